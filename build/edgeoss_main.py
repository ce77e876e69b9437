"""The binary's entry point (PyInstaller runs this file, not the package)."""

import multiprocessing

from edgeoss.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    main()
