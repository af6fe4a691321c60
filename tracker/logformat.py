"""Log lines: one per event, the same fields every time, as text or as JSON lines.

Text (the default) is `time level logger: message`; LOG_FORMAT=json writes one JSON
object per line with `ts`, `level`, `logger`, `pid`, `message` (and `exc` for a traceback),
for log shippers that parse JSON. Tokens are redacted before either (tracker.logredact).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")


class JsonLinesFormatter(logging.Formatter):
    """Format a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def install(log_format: str) -> None:
    """Give every handler of the root logger the chosen format.

    Raises:
        ValueError: LOG_FORMAT is neither `text` nor `json`.
    """
    if log_format not in FORMATS:
        raise ValueError("LOG_FORMAT: must be text or json")
    formatter = JsonLinesFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
