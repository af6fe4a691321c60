"""Reports from phones (事件上报): check a report and its photos, store it once, show it live.

The answers are those of docs/incidents.md ("Reporting from the phone"): every refusal
names the field and the rule, a resend of a stored report is acknowledged as a duplicate,
and only a store outage asks the phone to send again.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import current_app
from gevent.threadpool import ThreadPool
from sqlalchemy.exc import SQLAlchemyError

from .. import media, store
from ..extensions import db
from ..ingest.service import limits
from ..ingest.validate import ItemError, parse_recent_ts
from ..live.publish import publish_incident
from ..store.devices import DeviceIdentity
from .categories import categories
from .service import incident_detail

log = logging.getLogger(__name__)

T = TypeVar("T")
Answer = tuple[dict[str, Any], int]

MAX_NOTE_CHARS = 2000
KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
UNAVAILABLE = {"ok": False, "error": "store: database unavailable, retry", "retry": True}
NO_POSITION = "report.lat: a report needs a position: no fix from the phone and none stored"

# Decoding and re-encoding a photo takes tens of milliseconds of CPU (a 40-megapixel one,
# seconds). Pillow releases the GIL while it decodes and encodes, so on one worker thread
# the event loop keeps answering phones meanwhile, and a burst of uploads queues behind
# itself instead of holding several decoded images in memory at once.
_photo_pool: ThreadPool | None = None


class ReportError(ValueError):
    """A report breaks a rule; the message names the field."""


@dataclass(frozen=True, slots=True)
class Report:
    """The `report` field of an upload, checked."""

    key: str
    category: str
    note: str
    point: tuple[float, float] | None
    reported_at: datetime


def parse_report(raw: Any, category_ids: Sequence[str], now: datetime) -> Report:
    """Check the `report` field (a JSON object) and return it, or raise ReportError.

    Args:
        raw: the form field's text, or None if it was not sent.
        category_ids: the configured categories, in their configured order.
        now: the time against which `ts` must be recent.

    Returns:
        The report, with `point` None when the phone had no fix.
    """
    try:
        report = json.loads(raw) if isinstance(raw, str) else None
    except (ValueError, RecursionError):
        report = None
    if not isinstance(report, dict):
        raise ReportError("report: must be a JSON object with key, category, note, lat, lon, ts")
    key = report.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        raise ReportError("report.key: must be 8 to 64 characters of A-Z a-z 0-9 - _")
    category = report.get("category")
    if category not in category_ids:
        raise ReportError(f"report.category: must be one of {', '.join(category_ids)}")
    note = report.get("note")
    note = note.strip() if isinstance(note, str) else ""
    if not 1 <= len(note) <= MAX_NOTE_CHARS:
        raise ReportError(f"report.note: must be a string of 1 to {MAX_NOTE_CHARS} characters")
    try:
        reported_at = parse_recent_ts(report.get("ts"), now, limits())
    except ItemError as exc:
        raise ReportError(f"report.{exc}") from None
    return Report(key, category, note, _point(report), reported_at)


def _point(report: dict[str, Any]) -> tuple[float, float] | None:
    """Return the report's (lat, lon), or None when both are null (the phone had no fix)."""
    lat, lon = report.get("lat"), report.get("lon")
    if lat is None and lon is None:
        return None
    for name, value, bound in (("lat", lat, 90), ("lon", lon, 180)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ReportError(f"report.{name}: must be a number, or lat and lon both null")
        if not math.isfinite(value) or not -bound <= value <= bound:
            raise ReportError(f"report.{name}: must be between -{bound} and {bound}")
    if lat == 0 and lon == 0:
        return None  # what broken GPS stacks report without a fix: not a place to send anyone
    return float(lat), float(lon)


def _count_words(count: int) -> str:
    """Return a small count as a word, as the contract's messages spell it."""
    return _NUMBER_WORDS[count] if 0 <= count < len(_NUMBER_WORDS) else str(count)


def _off_the_loop(function: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy photo work on the photo thread, waiting cooperatively."""
    global _photo_pool
    if _photo_pool is None:
        _photo_pool = ThreadPool(1)
    return _photo_pool.apply(function, args)


def _check_count(count: int) -> None:
    """Raise ReportError unless a report has one to REPORT_MAX_PHOTOS photos."""
    most = current_app.config["REPORT_MAX_PHOTOS"]
    if not 1 <= count <= most:
        raise ReportError(f"photo: one to {_count_words(most)} photos are required")


def check_photos(uploads: Sequence[bytes]) -> list[media.CheckedPhoto]:
    """Return the uploads as clean photos, each once, or raise ReportError naming the first bad one.

    Args:
        uploads: the `photo` files' bytes in the order sent (photo[0] is the first).

    Returns:
        The re-encoded photos; one that is the same as an earlier one is left out.
    """
    config = current_app.config
    _check_count(len(uploads))
    checked: list[media.CheckedPhoto] = []
    for index, data in enumerate(uploads):
        try:
            photo = _off_the_loop(
                media.checked_photo, data, config["PHOTO_MAX_BYTES"], config["PHOTO_MAX_PIXELS"]
            )
        except media.PhotoError as exc:
            raise ReportError(f"photo[{index}]: {exc}") from None
        if all(photo.data != earlier.data for earlier in checked):
            checked.append(photo)
    return checked


def submit_report(device: DeviceIdentity, raw_report: Any, uploads: Sequence[bytes]) -> Answer:
    """Store a phone's report with its photos once, push it live, and return the answer.

    Args:
        device: the reporting phone (its token already checked).
        raw_report: the `report` form field.
        uploads: the `photo` files' bytes, in the order sent.

    Returns:
        (body, HTTP status) as docs/incidents.md lists them.
    """
    try:
        report = parse_report(raw_report, [c["id"] for c in categories()], datetime.now(UTC))
        _check_count(len(uploads))
        stored = store.reports.reported_incident(db.session, device.person_id, report.key)
        db.session.rollback()  # end the read before the slow photo work
        if stored is not None:
            return _duplicate(stored), 200
        photos = check_photos(uploads)
    except ReportError as exc:
        return {"ok": False, "error": str(exc)}, 400
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("report lookup for person %d failed", device.person_id, exc_info=True)
        return UNAVAILABLE, 503
    try:
        # Files first: a file that no committed row names is harmless (content-addressed).
        shas = [_off_the_loop(media.photo_store().put, photo.data) for photo in photos]
    except OSError:
        log.exception("photos of person %d's report could not be written", device.person_id)
        return {"ok": False, "error": "store: photo storage unavailable, retry", "retry": True}, 503
    try:
        answer = _store(device, report, photos, shas)
    except ReportError as exc:
        db.session.rollback()
        return {"ok": False, "error": str(exc)}, 400
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("report of person %d not stored", device.person_id, exc_info=True)
        return UNAVAILABLE, 503
    if not answer["duplicate"]:
        _publish(answer["incident_id"])
    return answer, 200


def _store(
    device: DeviceIdentity,
    report: Report,
    photos: Sequence[media.CheckedPhoto],
    shas: Sequence[str],
) -> dict[str, Any]:
    """Commit the incident and its photos in one transaction; return the answer's body."""
    point = report.point or store.reports.newest_fix(db.session, device.person_id)
    if point is None:
        raise ReportError(NO_POSITION)
    incident_id = store.reports.add_reported_incident(
        db.session,
        device.person_id,
        report.key,
        report.category,
        report.note,
        point,
        report.reported_at,
    )
    if incident_id is None:
        # The same report, sent again while this one was being checked, got there first.
        db.session.rollback()
        stored = store.reports.reported_incident(db.session, device.person_id, report.key)
        assert stored is not None
        db.session.rollback()
        return _duplicate(stored)
    store.reports.add_photos(
        db.session,
        incident_id,
        [
            (sha, photo.content_type, len(photo.data), photo.width, photo.height)
            for sha, photo in zip(shas, photos, strict=True)
        ],
    )
    db.session.commit()
    log.info(
        "report %s of person %d stored as incident %d with %d photos",
        report.key,
        device.person_id,
        incident_id,
        len(photos),
    )
    return {"ok": True, "incident_id": incident_id, "duplicate": False, "photos": len(photos)}


def _duplicate(stored: Any) -> dict[str, Any]:
    """Return the answer to a report that is already stored."""
    return {"ok": True, "incident_id": stored.id, "duplicate": True, "photos": stored.photos}


def _publish(incident_id: int) -> None:
    """Push a new reported incident to the staff in scope; the report is stored regardless."""
    try:
        detail = incident_detail(incident_id)
        publish_incident(detail, detail["unit_id"])
    except Exception:
        # The phone must not resend a stored report because the live push failed: the
        # map shows the incident on its next load.
        db.session.rollback()
        log.exception("reported incident %d not pushed live", incident_id)
