"""Keep device tokens out of every log line of the process.

Tokens travel in URLs: in the path of the GPS apps' endpoints (/osmand/<token>,
/owntracks/<token>, /overland/<token>), in their query strings (?id=, ?deviceid=, ?token=),
in the phone's pairing link (/m#token=...) and in the user-info part of a URL
(https://me:<token>@host/owntracks). Flask's "Exception on /osmand/<token> [GET]", werkzeug's
and gunicorn's access lines all write the URL, so the redaction happens where every record
is made: install() wraps the log record factory, and each record leaves it with its message
already formatted and redacted.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Iterator, Mapping
from typing import Any

REDACTED = "[redacted]"

# A token ends at the next separator, quote or space; "<" keeps route patterns such as
# "/osmand/<token>" as they are.
_VALUE = r"[^/?#&;\s\"'<>]+"
_TOKEN_NAMES = r"(?:id|deviceid|token)="
_PATTERNS = (
    re.compile(rf"(/(?:osmand|owntracks|overland)/){_VALUE}"),
    re.compile(rf"([?&;#]{_TOKEN_NAMES}){_VALUE}", re.IGNORECASE),
    # https://me:<token>@host/owntracks, as OwnTracks users may write their Basic auth.
    re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/?#\s:@]*:)[^/?#\s@]+(?=@)", re.IGNORECASE),
    re.compile(
        r"((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic)\s+)[^\s\"',;}]+",
        re.IGNORECASE,
    ),
)
# An argument that is a query string on its own (gunicorn's %(q)s atom), whose first
# parameter has no "?" or "&" in front, or an Authorization header's value on its own
# (gunicorn's %({authorization}i)s).
_LEADING = (
    re.compile(rf"^({_TOKEN_NAMES}){_VALUE}", re.IGNORECASE),
    re.compile(r"^((?:bearer|basic)\s+)[A-Za-z0-9+/=._~\-]{16,}$", re.IGNORECASE),
)


def redact(text: str) -> str:
    """Return `text` with every device token in it replaced by [redacted]."""
    for pattern in _PATTERNS:
        text = pattern.sub(rf"\g<1>{REDACTED}", text)
    return text


def _redact_argument(value: Any) -> Any:
    """Return a string argument redacted, including a bare query string; others unchanged."""
    if isinstance(value, str):
        for pattern in _LEADING:
            value = pattern.sub(rf"\g<1>{REDACTED}", value)
        return redact(value)
    return value


class _RedactedArguments(Mapping):
    """A record's mapping of arguments whose string values are read redacted.

    It wraps the original mapping rather than copying it: gunicorn's access log passes a
    dict subclass that answers "-" for atoms it lacks and finds headers case-insensitively.
    """

    def __init__(self, arguments: Mapping) -> None:
        """Wrap `arguments`."""
        self.arguments = arguments

    def __getitem__(self, key: Any) -> Any:
        """Return the argument `key`, redacted."""
        return _redact_argument(self.arguments[key])

    def __iter__(self) -> Iterator:
        """Iterate over the names of the arguments."""
        return iter(self.arguments)

    def __len__(self) -> int:
        """Return the number of arguments."""
        return len(self.arguments)

    def __repr__(self) -> str:
        """Return the redacted mapping as a dict would print (`log.info("%s", a_dict)`)."""
        return repr({key: self[key] for key in self.arguments})

    __str__ = __repr__


def redact_record(record: logging.LogRecord) -> None:
    """Replace the record's message by its redacted formatted text; args become ().

    A record whose message cannot be formatted is left as it is, so that logging reports
    the error at emit time as it always does.
    """
    original_args = record.args
    if isinstance(original_args, Mapping):
        record.args = _RedactedArguments(original_args)
    elif isinstance(original_args, tuple):
        record.args = tuple(_redact_argument(value) for value in original_args)
    try:
        message = record.getMessage()
    except Exception:
        record.args = original_args
        return
    record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text, so the traceback they print is the redacted one.
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install() -> None:
    """Redact device tokens in every log record made from now on in this process."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_tokens", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    make_record.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
