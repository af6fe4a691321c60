"""Metric labels stay few and carry no one's identity; log lines have one shape (no database)."""

from __future__ import annotations

import json
import logging

import pytest

from tracker import logformat, metrics


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("lat: must be between -90 and 90", "lat"),
        ("positions[3].ts: not a time", "ts"),
        ("item: the database cannot store this fix (value out of range)", "item"),
        ("token abc123 unknown: whatever", "other"),
        ("", "other"),
    ],
)
def test_a_rejection_is_labelled_by_its_field(error, reason):
    assert metrics._reason(error) == reason


def test_metrics_allow_accepts_addresses_and_networks_and_names_a_bad_one():
    networks = metrics.parse_networks("127.0.0.1, 10.0.0.0/8,::1")
    assert metrics._allowed("10.1.2.3", networks) and metrics._allowed("::1", networks)
    assert not metrics._allowed("192.168.1.1", networks)
    assert not metrics._allowed(None, networks)
    assert metrics._allowed("192.168.1.1", metrics.parse_networks(""))
    with pytest.raises(ValueError, match="METRICS_ALLOW: 'example.org'"):
        metrics.parse_networks("example.org")


def test_json_log_lines_have_the_same_fields_every_time():
    record = logging.LogRecord(
        "tracker.x", logging.WARNING, __file__, 1, "person %d: %s", (7, "下线"), None
    )
    line = json.loads(logformat.JsonLinesFormatter().format(record))
    assert set(line) == {"ts", "level", "logger", "pid", "message"}
    assert (line["level"], line["logger"], line["message"]) == (
        "WARNING",
        "tracker.x",
        "person 7: 下线",
    )
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        failed = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "RuntimeError: boom" in json.loads(logformat.JsonLinesFormatter().format(failed))["exc"]
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logformat.install("xml")
