"""The tools edgeoss runs for the model: the OS sandbox (sandbox.py), the
built-in python tool (python_tool.py, with python_worker.py inside the
sandbox). All of them are off until the user turns them on."""
