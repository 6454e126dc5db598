"""Logging for a long-running controller: JSON lines for log collectors, text for people.

Structured fields travel as `extra={...}`; both formats print them, so a run's
revision, counts, duration and error reason are greppable at 3 a.m. either way.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else came from `extra=` and is a field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
# Their INFO lines are per request or per job; urllib3 warns on every connection retry,
# which our own "watch interrupted" / "reconcile failed" lines already say once.
NOISY = {
    "apscheduler": logging.WARNING,
    "kubernetes": logging.WARNING,
    "git": logging.WARNING,
    "urllib3": logging.ERROR,
}


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **fields_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = " ".join(f"{k}={_short(v)}" for k, v in fields_of(record).items())
        return f"{text}  {extra}" if extra else text


def _short(value: Any) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    )
    return json.dumps(text) if " " in text else text


def setup(*, fmt: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure the root logger once, for the CLI (a library never calls this)."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, noisy_level in NOISY.items():
        logging.getLogger(name).setLevel(noisy_level)
