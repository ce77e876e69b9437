"""Import onnxruntime-genai and onnxruntime: the one place that does.

Both ship Microsoft's telemetry client (OneDS) on every platform. Imported
plainly, they write a session file (.ses) to the temporary folder, and the
client can send events over the network. A local, offline runtime has no
business doing that unasked, so edgeoss turns it off through their own
switch, ORT_DISABLE_TELEMETRY=1, before the first import (it is read at
load). A user who sets ORT_DISABLE_TELEMETRY themselves keeps their choice.
"""

from __future__ import annotations

import os
from typing import Any

from edgeoss import constants
from edgeoss.errors import EngineError

INSTALL_HINT = "pip install 'edgeoss[ort]'"


def quiet_environment() -> None:
    """Set the telemetry switch for this process and the children it starts."""
    os.environ.setdefault(constants.ENV_ORT_DISABLE_TELEMETRY, "1")


def load() -> Any:
    """The onnxruntime_genai module, or EngineError saying how to install it."""
    quiet_environment()
    try:
        import onnxruntime_genai
    except ImportError as exc:
        raise EngineError("onnxruntime-genai is not installed", hint=INSTALL_HINT) from exc
    return onnxruntime_genai


def load_onnxruntime() -> Any:
    quiet_environment()
    import onnxruntime

    return onnxruntime
