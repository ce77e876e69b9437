"""What the tray remembers between runs: the model, the reasoning effort, the port, the tools."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeoss import constants, fsutil
from edgeoss.harmony import EFFORTS
from edgeoss.paths import paths
from edgeoss.tools import TOOL_NAMES

log = logging.getLogger(__name__)


@dataclass
class TraySettings:
    model: str | None = None  # None: the planner's choice among installed models (or the demo)
    effort: str = "medium"
    port: int = constants.DEFAULT_PORT
    tools: list[str] = field(default_factory=list)  # the tools the server runs for the model: none unless turned on

    @staticmethod
    def file() -> Path:
        return paths().config / "tray.json"

    @classmethod
    def load(cls) -> TraySettings:
        try:
            data = fsutil.read_json(cls.file())
            settings = cls(
                model=data.get("model") if isinstance(data.get("model"), str) else None,
                effort=data.get("effort") if data.get("effort") in EFFORTS else "medium",
                port=int(data.get("port", constants.DEFAULT_PORT)),
                tools=[t for t in tools if t in TOOL_NAMES] if isinstance(tools := data.get("tools"), list) else [],
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring %s (%s); using the defaults", cls.file(), exc)
            return cls()
        return settings

    def save(self) -> None:
        with fsutil.atomic_file(self.file(), overwrite=True) as tmp:
            tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
