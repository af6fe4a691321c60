"""The audit trail for admins: search it, and export it as CSV (docs/privacy.md)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, stream_with_context
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import audit, store
from ..extensions import db
from ..models import AuditEvent
from .routes import json_error, parse_time

bp = Blueprint("audit_api", __name__, url_prefix="/api/v1")
bp.register_error_handler(HTTPException, json_error)

MAX_PAGE = 500
CSV_COLUMNS = (
    "id",
    "at",
    "actor_id",
    "actor_name",
    "address",
    "action",
    "target_kind",
    "target_id",
    "before",
    "after",
)


def _admin() -> None:
    """Refuse anyone but an admin: the trail says who looked at whom."""
    if current_user.role != "admin":
        abort(403, description="role: needs admin")


def _id_arg(name: str) -> int | None:
    """Return an optional id query parameter, or 400 naming it."""
    value = request.args.get(name, "")
    if value == "":
        return None
    if not value.isdigit() or int(value) > 2**63 - 1:
        abort(400, description=f"{name}: must be a whole number")
    return int(value)


def _text_arg(name: str, max_chars: int) -> str | None:
    """Return an optional text query parameter of at most max_chars, or 400 naming it."""
    value = request.args.get(name, "").strip()
    if len(value) > max_chars:
        abort(400, description=f"{name}: at most {max_chars} characters")
    return value or None


def _search() -> Any:
    """Return the select of the rows the query parameters ask for, in the admin's scope."""
    start, end = parse_time("from", None), parse_time("to", None)
    if start is not None and end is not None and start >= end:
        abort(400, description="from: must be before to")
    return store.audit.audit_trail(
        current_user,
        person_id=_id_arg("person_id"),
        actor_name=_text_arg("actor", 64),
        action=_text_arg("action", 48),
        start=start,
        end=end,
        before_id=_id_arg("before_id"),
    )


def _filters() -> dict[str, str]:
    """Return the search's parameters, as the trail records the search itself."""
    names = ("person_id", "actor", "action", "from", "to")
    return {name: request.args[name] for name in names if request.args.get(name)}


def _record_search(action: str) -> None:
    """Record a search of the trail: about the person searched for, if one was."""
    person_id = _id_arg("person_id")
    audit.record_read(action, "person" if person_id else "audit", person_id, _filters())


def event_json(event: AuditEvent) -> dict[str, Any]:
    """Return one audit row as the API shows it."""
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "address": str(event.address) if event.address is not None else None,
        "action": event.action,
        "target_kind": event.target_kind,
        "target_id": event.target_id,
        "before": event.before,
        "after": event.after,
    }


@bp.get("/audit")
@login_required
def audit_index():
    """Return audit rows, newest first: `?person_id=&actor=&action=&from=&to=&before_id=`.

    `next_before_id` pages on; the search is itself recorded in the trail.
    """
    _admin()
    stmt = _search()
    limit = _id_arg("limit")
    limit = 100 if limit is None else limit
    if not 1 <= limit <= MAX_PAGE:
        abort(400, description=f"limit: must be a whole number from 1 to {MAX_PAGE}")
    rows = db.session.execute(stmt.limit(limit + 1)).scalars().all()
    _record_search("audit.read")
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify(
        events=[event_json(r) for r in rows],
        next_before_id=rows[-1].id if more and rows else None,
    )


@bp.get("/audit.csv")
@login_required
def audit_csv():
    """Return every audit row the search matches as CSV (UTF-8 with BOM, for Excel)."""
    _admin()
    stmt = _search()
    _record_search("audit.export_csv")

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        out.write("\ufeff")
        writer.writerow(CSV_COLUMNS)
        for event in db.session.execute(stmt.execution_options(yield_per=1000)).scalars():
            row = event_json(event)
            for key in ("before", "after"):
                row[key] = json.dumps(row[key], ensure_ascii=False) if row[key] else ""
            writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        yield out.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
