"""Logging for a station: plain lines for a person, or one JSON object a line for journald and
log shippers (``log_format: json``)."""

from __future__ import annotations

import json
import logging
import time


class JsonLines(logging.Formatter):
    """time, level, logger, message (and the exception, where there is one), one object a line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def set_up(level: str, form: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if form == "json" else
                         logging.Formatter("%(asctime)s edgeseg %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
