"""The daily report: yesterday's person-days, grid-days and assessment of each unit as XLSX.

Safe from cron: an advisory lock lets one run at a time, each file is written to a
temporary name and renamed into place, and a run again for the same day replaces the
files and their rows in daily_reports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask_babel import force_locale
from sqlalchemy.orm import Session

from .. import audit, store
from ..models import User
from . import export, tables
from .reports import ReportSettings, compute
from .rules import parse_rules

log = logging.getLogger(__name__)

LOCK_NAME = "reports.daily"


@dataclass(frozen=True, slots=True)
class Written:
    """One file written: for which unit, where, how large."""

    unit_id: int
    path: Path
    size: int


def report_path(folder: str | Path, file_name: str) -> Path | None:
    """Return the path of a report file in the folder, None for a name that leaves it."""
    if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
        return None
    return Path(folder) / file_name


def unit_workbook(
    session: Session,
    unit_id: int,
    day: date,
    config: Mapping[str, Any],
    parents: Mapping[int, int | None],
) -> bytes:
    """Return the XLSX of one unit's day: person-days, grid-days and assessment sheets."""
    settings = ReportSettings.from_config(config)
    everyone = User(username="cli:daily-report", role="admin", unit_id=None)
    computed = compute(session, everyone, unit_id, day, day, settings)
    rules = parse_rules(config["ASSESSMENT_RULES"])
    # No request chooses the language here: the files are in REPORTS_LANGUAGE.
    with force_locale(config["REPORTS_LANGUAGE"]):
        return export.to_xlsx(
            [
                export.Sheet(
                    str(tables.PERSON_DAYS_TITLE),
                    tables.PERSON_DAY_COLUMNS,
                    tables.person_day_rows(computed, settings.zone),
                ),
                export.Sheet(
                    str(tables.GRID_DAYS_TITLE),
                    tables.GRID_DAY_COLUMNS,
                    tables.grid_day_rows(computed, settings.zone),
                ),
                export.Sheet(
                    str(tables.ASSESSMENT_TITLE),
                    tables.ASSESSMENT_COLUMNS,
                    tables.assessment_rows(computed, rules, parents, "day"),
                ),
            ]
        )


def write_daily_reports(
    session: Session, day: date, config: Mapping[str, Any], kinds: Sequence[str]
) -> list[Written] | None:
    """Write the day's XLSX of every unit of the given kinds and record each in the table.

    Args:
        session: a session; committed here once every file is written.
        day: the day to report.
        config: the app's configuration (REPORTS_DIR and the report settings).
        kinds: the unit kinds that get a report.

    Returns:
        The files written, or None when another run holds the lock.
    """
    if not store.zones.try_advisory_lock(session, LOCK_NAME):
        return None
    # Kept figures hold tracks: they go when the fixes they came from go.
    store.assessment.prune_kept(session, date.today() - timedelta(days=config["RETENTION_DAYS"]))
    folder = Path(config["REPORTS_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    parents = store.scope.unit_parents(session)
    written = []
    for unit in store.assessment.report_units(session, kinds):
        content = unit_workbook(session, unit.id, day, config, parents)
        name = f"{day.isoformat()}-unit{unit.id}.xlsx"
        path = folder / name
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        temporary.write_bytes(content)
        os.replace(temporary, path)
        store.assessment.save_daily_report(session, unit.id, day, name, len(content))
        audit.record_read("report.daily_write", "unit", unit.id, {"date": day})
        written.append(Written(unit.id, path, len(content)))
        log.info("daily report of unit %d for %s: %s", unit.id, day, path)
    session.commit()
    return written
