"""Device tokens never reach a log line: paths, query strings, access logs, tracebacks."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask import Flask, request

from tracker import logredact
from tracker.logredact import REDACTED, redact

TOKEN = "Vr0m6jtteASTG06KBRH08QtmUWxKkTDIh6oLT_2FJA8"


@pytest.fixture()
def redacting() -> Iterator[None]:
    """Install the redaction for one test, then restore the factory that was there."""
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    logredact.install()
    yield
    logging.setLogRecordFactory(previous)


def record(msg: object, *args: object, **kwargs: object) -> logging.LogRecord:
    """Make a record through the installed factory, as Logger.makeRecord does."""
    factory = logging.getLogRecordFactory()
    return factory("test", logging.INFO, __file__, 1, msg, args, None, **kwargs)


@pytest.mark.parametrize("client", ["osmand", "owntracks", "overland"])
def test_a_token_in_the_path_is_redacted(client):
    line = f'"POST /{client}/{TOKEN}?lat=1&lon=2 HTTP/1.1" 200 2'
    assert redact(line) == f'"POST /{client}/{REDACTED}?lat=1&lon=2 HTTP/1.1" 200 2'


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"/osmand?id={TOKEN}&lat=1", f"/osmand?id={REDACTED}&lat=1"),
        (f"/osmand?lat=1&deviceid={TOKEN}", f"/osmand?lat=1&deviceid={REDACTED}"),
        (f"/owntracks?token={TOKEN}", f"/owntracks?token={REDACTED}"),
        (f"/overland?TOKEN={TOKEN}#x", f"/overland?TOKEN={REDACTED}#x"),
        (f"https://t.example/m#token={TOKEN}", f"https://t.example/m#token={REDACTED}"),
    ],
)
def test_a_token_in_the_query_or_the_pairing_link_is_redacted(url, expected):
    assert redact(url) == expected


def test_basic_auth_never_shows_in_urls():
    # OwnTracks sends the token as the Basic auth password: a header, not part of the URL
    # that request lines and Flask's messages write; one written into a URL is redacted.
    assert redact("POST /owntracks HTTP/1.1") == "POST /owntracks HTTP/1.1"
    assert redact(f"https://me:{TOKEN}@t.example/owntracks") == (
        f"https://me:{REDACTED}@t.example/owntracks"
    )
    assert redact(f"headers: {{'Authorization': 'Bearer {TOKEN}'}}") == (
        f"headers: {{'Authorization': 'Bearer {REDACTED}'}}"
    )


@pytest.mark.parametrize(
    "message",
    [
        "device 12 of person 7 connected",
        '"GET /api/v1/people?unit_id=3&id_min=4 HTTP/1.1" 200 512',
        "route /osmand/<token> registered; see /overland/ for batches",
        "http://127.0.0.1:5000/m opened",
        "Basic auth failed for user zhang",
        "created positions partition for 2024-05-01",
    ],
)
def test_normal_messages_are_untouched(redacting, message):
    assert redact(message) == message
    assert record("%s", message).getMessage() == message


def test_a_record_leaves_the_factory_formatted_and_redacted(redacting):
    made = record("Exception on %s [%s]", f"/owntracks/{TOKEN}", "POST")
    assert made.msg == f"Exception on /owntracks/{REDACTED} [POST]"
    assert made.args == ()
    assert made.getMessage() == made.msg


def test_a_bare_query_string_argument_is_redacted(redacting):
    made = record("query %s", f"id={TOKEN}&lat=1")
    assert made.getMessage() == f"query id={REDACTED}&lat=1"


def test_gunicorns_access_record_with_dict_args_is_redacted(redacting):
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
    config = Config()
    config.set("accesslog", "-")
    config.set(
        "access_log_format",
        '%(h)s "%(r)s" %(s)s %(U)s %(q)s "%({authorization}i)s" "%({x-missing}i)s" "%(f)s"',
    )
    gunicorn_log = Logger(config)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/osmand/{TOKEN}?id={TOKEN}&lat=1",
        "PATH_INFO": f"/osmand/{TOKEN}",
        "QUERY_STRING": f"id={TOKEN}&lat=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.9",
    }
    response = SimpleNamespace(status="200 OK", sent=2, headers=[])
    request = SimpleNamespace(headers=[("AUTHORIZATION", f"Basic {basic}")])
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    gunicorn_log.access_log.addHandler(handler)
    gunicorn_log.access(response, request, environ, timedelta(milliseconds=3))

    (line,) = [r.getMessage() for r in records]
    assert TOKEN not in line and basic not in line
    assert line == (
        f'10.0.0.9 "GET /osmand/{REDACTED}?id={REDACTED}&lat=1 HTTP/1.1" 200 '
        f'/osmand/{REDACTED} id={REDACTED}&lat=1 "Basic {REDACTED}" "-" "-"'
    )


def test_a_record_whose_message_cannot_be_formatted_is_kept_as_it_is(redacting):
    made = record("%d positions from %s", "not a number", f"/osmand/{TOKEN}")
    assert made.msg == "%d positions from %s"
    assert made.args == ("not a number", f"/osmand/{TOKEN}")
    with pytest.raises(TypeError):
        made.getMessage()


def test_flasks_exception_line_and_its_traceback_are_redacted(redacting, caplog):
    app = Flask(__name__)

    @app.post("/owntracks/<token>")
    def fail(token: str):
        raise ValueError(f"cannot read the batch posted to {request.url}")

    with caplog.at_level(logging.ERROR):
        assert app.test_client().post(f"/owntracks/{TOKEN}").status_code == 500
    (made,) = [r for r in caplog.records if r.name == app.logger.name]
    assert made.getMessage() == f"Exception on /owntracks/{REDACTED} [POST]"
    printed = logging.Formatter().format(made)
    assert (
        f"ValueError: cannot read the batch posted to http://localhost/owntracks/{REDACTED}"
        in printed
    )
    assert TOKEN not in printed and TOKEN not in caplog.text


def test_install_wraps_the_factory_once(redacting):
    factory = logging.getLogRecordFactory()
    logredact.install()
    assert logging.getLogRecordFactory() is factory


def test_a_single_dict_argument_prints_as_the_dict(redacting):
    """`log.info("counts: %s", a_dict)` makes the dict the record's mapping of arguments."""
    made = record("roster imported: %s", {"created": 3, "path": f"/osmand/{TOKEN}"})
    assert made.getMessage() == f"roster imported: {{'created': 3, 'path': '/osmand/{REDACTED}'}}"
