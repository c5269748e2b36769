"""The system log: a rotating file under ``workspace/logs/`` for events and tracebacks.

The UI shows people friendly messages; this file keeps the details.
"""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

from core.platform.workspace import Workspace

LOG_FILE = "studio.log"
MAX_BYTES = 5_000_000
BACKUPS = 5
LOGGERS = ("core", "pages", "Home")
FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


def configure_logging(workspace: Workspace, level: int = logging.INFO) -> Path:
    """Send the app's loggers to the workspace's rotating log file (one file per process, however often called)."""
    path = (workspace.logs / LOG_FILE).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for old in [h for h in logger.handlers if isinstance(h, RotatingFileHandler) and Path(h.baseFilename) != path]:
            logger.removeHandler(old)  # another workspace's file (tests switch workspaces)
            old.close()
        if not any(isinstance(h, RotatingFileHandler) for h in logger.handlers):
            handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
            handler.setFormatter(logging.Formatter(FORMAT))
            logger.addHandler(handler)
    return path
