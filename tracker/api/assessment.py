"""Patrol report endpoints (巡查考核): person-days, grid-days, assessment, coverage, daily files.

Each answers JSON, or with `.csv` / `.xlsx` after its name a file of the same figures;
each is scoped to the account and recorded in the audit table (docs/reports.md).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request, send_file
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from .. import audit, store
from ..assessment import export, tables
from ..assessment.daily import report_path
from ..assessment.reports import Computed, ReportSettings, compute, coverage_picture
from ..assessment.rules import parse_rules
from ..extensions import db
from ..messages import UserError
from .routes import json_error

bp = Blueprint("assessment_api", __name__, url_prefix="/api/v1/reports")
bp.register_error_handler(HTTPException, json_error)

FORMATS = ("json", "csv", "xlsx")
PERIODS = ("day", "week", "month")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.errorhandler(UserError)
def refused(exc: UserError) -> tuple[Response, int]:
    """Answer bad input: `error` in English, `message` in the reader's language."""
    return jsonify(error=str(exc), message=exc.localized()), 400


def _day(name: str) -> date:
    """Return a required YYYY-MM-DD parameter, or refuse it naming it."""
    value = request.args.get(name)
    if value is None:
        raise UserError("%(field)s: is required", field=name)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError("%(field)s: must be a date YYYY-MM-DD", field=name) from None


def _range() -> tuple[date, date]:
    """Return the from and to days (inclusive), or refuse them naming the rule."""
    first = _day("from")
    last = _day("to") if "to" in request.args else first
    if last < first:
        raise UserError("to: must not be before from")
    limit = int(current_app.config["REPORTS_MAX_DAYS"])
    if (last - first).days + 1 > limit:
        raise UserError("to: at most %(days)s days from from", days=limit)
    return first, last


def _unit_id(name: str = "unit_id", required: bool = False) -> int | None:
    """Return a unit parameter in the account's scope (its own unit when absent)."""
    value = request.args.get(name)
    if value is None:
        if required:
            raise UserError("%(field)s: is required", field=name)
        return current_user.unit_id
    try:
        unit_id = int(value)
    except ValueError:
        raise UserError("%(field)s: must be an integer", field=name) from None
    if not store.scope.unit_in_scope(db.session, current_user, unit_id):
        raise UserError("%(field)s: no such unit in your scope", field=name)
    return unit_id


def _settings() -> ReportSettings:
    """Return the report settings of this app."""
    return ReportSettings.from_config(current_app.config)


def _person_id() -> int | None:
    """Return the optional person_id parameter, or refuse it naming the rule."""
    value = request.args.get("person_id")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError("%(field)s: must be an integer", field="person_id") from None


def _computed(grids_too: bool) -> tuple[Computed, int | None, date, date]:
    """Return the figures of the request's unit, days and (for person-days) person."""
    first, last = _range()
    unit_id = _unit_id()
    person_id = None if grids_too else _person_id()
    computed = compute(
        db.session,
        current_user,
        unit_id,
        first,
        last,
        _settings(),
        grids_too,
        person_id=person_id,
    )
    db.session.commit()  # the figures computed afresh are kept for the next report
    return computed, unit_id, first, last


def _answer(
    fmt: str,
    action: str,
    unit_id: int | None,
    first: date,
    last: date,
    title: Any,
    columns: Any,
    rows: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> Any:
    """Record the read, then answer the rows as JSON, CSV or XLSX."""
    if fmt not in FORMATS:
        abort(404)
    audit.record_read(
        action,
        "unit",
        unit_id,
        {"from": first, "to": last, "format": fmt, **(extra or {})},
    )
    name = f"{action.split('.')[-1].replace('_', '-')}-{first.isoformat()}-{last.isoformat()}"
    sheet = export.Sheet(str(title), columns, rows)
    if fmt == "csv":
        return Response(
            export.to_csv(sheet),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            export.to_xlsx([sheet]),
            mimetype=XLSX_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return jsonify(
        {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "unit_id": unit_id,
            "time_zone": current_app.config["HISTORY_TIME_ZONE"],
            **(extra or {}),
            "rows": rows,
        }
    )


@bp.get("/person-days", defaults={"fmt": "json"})
@bp.get("/person-days.<fmt>")
@login_required
def person_days(fmt: str):
    """Return each person's (or person_id's) days: duty, distance, on and off post, stops."""
    computed, unit_id, first, last = _computed(grids_too=False)
    rows = tables.person_day_rows(computed, _settings().zone)
    return _answer(
        fmt,
        "report.person_days",
        unit_id,
        first,
        last,
        tables.PERSON_DAYS_TITLE,
        tables.PERSON_DAY_COLUMNS,
        rows,
    )


@bp.get("/grid-days", defaults={"fmt": "json"})
@bp.get("/grid-days.<fmt>")
@login_required
def grid_days(fmt: str):
    """Return each grid's days: hours with someone inside, who, uncovered periods, coverage."""
    computed, unit_id, first, last = _computed(grids_too=True)
    settings = _settings()
    rows = tables.grid_day_rows(computed, settings.zone)
    return _answer(
        fmt,
        "report.grid_days",
        unit_id,
        first,
        last,
        tables.GRID_DAYS_TITLE,
        tables.GRID_DAY_COLUMNS,
        rows,
        {"radius_m": settings.radius_m},
    )


@bp.get("/assessment", defaults={"fmt": "json"})
@bp.get("/assessment.<fmt>")
@login_required
def assessment(fmt: str):
    """Return the score and pass or fail of each person and grid per day, week or month."""
    period = request.args.get("period", "day")
    if period not in PERIODS:
        raise UserError("period: must be day, week or month")
    rules = parse_rules(current_app.config["ASSESSMENT_RULES"])
    computed, unit_id, first, last = _computed(grids_too=True)
    parents = store.scope.unit_parents(db.session)
    rows = tables.assessment_rows(computed, rules, parents, period)
    return _answer(
        fmt,
        "report.assessment",
        unit_id,
        first,
        last,
        tables.ASSESSMENT_TITLE,
        tables.ASSESSMENT_COLUMNS,
        rows,
        {"period": period},
    )


@bp.get("/coverage")
@login_required
def coverage():
    """Return a grid's boundary, the area its on-duty tracks covered that day, the tracks."""
    grid_id = _unit_id("grid_id", required=True)
    assert grid_id is not None
    unit_id = _unit_id() if "unit_id" in request.args else grid_id
    day = _day("date")
    audit.record_read("report.coverage", "unit", grid_id, {"date": day, "unit_id": unit_id})
    picture = coverage_picture(db.session, current_user, unit_id, grid_id, day, _settings())
    return jsonify(picture)


@bp.get("/daily")
@login_required
def daily_list():
    """Return the daily report files of the units in scope, newest first."""
    rows = db.session.execute(store.assessment.daily_reports(current_user)).all()
    return jsonify(
        reports=[
            {
                "id": r.id,
                "unit_id": r.unit_id,
                "unit_name": r.unit_name,
                "date": r.day.isoformat(),
                "bytes": r.bytes,
                "created_at": r.created_at.isoformat(),
                "url": f"/api/v1/reports/daily/{r.id}.xlsx",
            }
            for r in rows
        ]
    )


@bp.get("/daily/<int:report_id>.xlsx")
@login_required
def daily_file(report_id: int):
    """Send one daily report file of a unit in scope."""
    row = db.session.execute(store.assessment.daily_report(current_user, report_id)).first()
    if row is None:
        abort(404, description="report: not found")
    path = report_path(current_app.config["REPORTS_DIR"], row.file_name)
    if path is None or not path.exists():
        abort(404, description="report: the file is gone")
    audit.record_read("report.daily", "unit", row.unit_id, {"date": row.day})
    return send_file(path, mimetype=XLSX_TYPE, as_attachment=True, download_name=row.file_name)
