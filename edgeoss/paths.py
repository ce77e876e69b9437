"""Where edgeoss keeps things: config, cache, data, logs, models.

platformdirs gives each OS its conventional folders; EDGEOSS_HOME moves all of
them under one folder (a portable install, a test, a USB stick).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import platformdirs

from edgeoss import constants


@dataclass(frozen=True)
class Paths:
    config: Path
    cache: Path
    data: Path

    @property
    def logs(self) -> Path:
        return self.data / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "edgeoss.log"

    @property
    def models(self) -> Path:
        return self.data / "models"

    def as_dict(self) -> dict[str, str]:
        return {
            "config": str(self.config),
            "cache": str(self.cache),
            "data": str(self.data),
            "logs": str(self.logs),
            "models": str(self.models),
        }


def paths() -> Paths:
    """The folders in force now (EDGEOSS_HOME is read on every call)."""
    home = constants.home_override()
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(config=root / "config", cache=root / "cache", data=root / "data")
    dirs = platformdirs.PlatformDirs(constants.APP_NAME, appauthor=False)
    return Paths(
        config=Path(dirs.user_config_dir),
        cache=Path(dirs.user_cache_dir),
        data=Path(dirs.user_data_dir),
    )
