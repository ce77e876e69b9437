"""Logging: a rotating file in the data folder, and the console on -v."""

from __future__ import annotations

import logging
import logging.handlers

from edgeoss import constants
from edgeoss.paths import paths

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(verbose: int = 0) -> logging.Logger:
    """Configure the `edgeoss` logger once per process (idempotent).

    The file gets EDGEOSS_LOG_LEVEL (INFO by default); the console gets
    warnings, INFO with -v and DEBUG with -vv. A log folder that cannot be
    written does not stop the command: the console still works.
    """
    logger = logging.getLogger("edgeoss")
    for handler in list(logger.handlers):
        if getattr(handler, "_edgeoss", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False

    file_level = getattr(logging, constants.log_level(), logging.INFO)
    try:
        log_file = paths().log_file
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file,
            maxBytes=constants.LOG_FILE_BYTES,
            backupCount=constants.LOG_FILE_BACKUPS,
            encoding="utf-8",
        )
        file_handler.setLevel(file_level)
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        file_handler._edgeoss = True  # type: ignore[attr-defined]
        logger.addHandler(file_handler)
    except OSError as exc:
        logging.getLogger(__name__).debug("no log file: %s", exc)

    console_level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    from rich.console import Console
    from rich.logging import RichHandler  # rich is a CLI dependency; import only when configuring

    console = RichHandler(level=console_level, console=Console(stderr=True), show_path=False, markup=False)
    console._edgeoss = True  # type: ignore[attr-defined]
    logger.addHandler(console)
    return logger
