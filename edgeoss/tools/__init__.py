"""The tools edgeoss runs for the model: the OS sandbox (sandbox.py), the
built-in python tool (python_tool.py, with python_worker.py inside the
sandbox). All of them are off until the user turns them on."""

TOOL_NAMES = ("python",)
"""The tools edgeoss can run for the model: what `--tools` and the tray's menu take."""
