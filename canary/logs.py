"""JSON logs: one object per line with the message, level, logger and every `extra` field.

At INFO the controller logs its decisions and checks; libraries that log routine work at INFO
(apscheduler's "Running job ..." every tick, kubernetes' and urllib3's connection chatter) only log
warnings and errors.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...`: the same fields as the JSON lines, for humans."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={_value(v)}" for k, v in vars(record).items() if k not in _STANDARD)
        line = super().formatMessage(record)
        return f"{line} {extras}" if extras else line


def _value(value: object) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"=" for c in value):
        return value
    return json.dumps(value, default=str)


QUIET_LIBRARIES = ("apscheduler", "kubernetes", "urllib3", "httpx", "httpcore")


def quiet_libraries(level: int = logging.WARNING) -> None:
    """Libraries log only from `level` up, whatever the root level."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level)


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet_libraries()
