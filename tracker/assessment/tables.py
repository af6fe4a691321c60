"""The reports as rows of facts (seconds, metres, ISO times) and their export columns.

JSON carries the facts; CSV and XLSX carry the columns below, in the units their headers
name (h, km, min, %), so that a spreadsheet needs no conversion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l

from ..messages import Message
from . import coverage
from .reports import Computed, mean_s
from .rules import Rule, Verdict, assess, choose, periods


def _iso(t: float | None, zone: ZoneInfo) -> str | None:
    """Return epoch seconds as ISO-8601 in the report's zone."""
    return None if t is None else datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def _round(value: float | None, digits: int = 0) -> float | None:
    """Return a figure rounded for the JSON, None kept."""
    return None if value is None else round(value, digits)


def person_day_rows(computed: Computed, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Return one row of facts per person and day, by day then person."""
    rows = []
    for day in computed.days:
        for person in computed.people:
            pd = computed.person_days[(person.id, day.day)]
            alerts = computed.alerts.get((person.id, day.day), {})
            tasks = computed.tasks.get((person.id, day.day), [])
            accepted = [t for t in tasks if t.accepted_at is not None]
            done = [t for t in tasks if t.done_at is not None]
            rows.append(
                {
                    "date": day.day.isoformat(),
                    "day_start": _iso(day.start, zone),
                    "day_end": _iso(day.end, zone),
                    "person_id": person.id,
                    "name": person.name,
                    "role": person.role,
                    "unit_id": person.unit_id,
                    "grid_id": person.patrol_unit_id,
                    "grid_name": computed.grid_names.get(person.patrol_unit_id),
                    "duty_s": _round(pd.duty_s),
                    "first_fix": _iso(pd.first_fix, zone),
                    "last_fix": _iso(pd.last_fix, zone),
                    "fixes": pd.fixes,
                    "distance_m": _round(pd.distance_m, 1),
                    "inside_s": _round(pd.inside_s),
                    "outside_s": _round(pd.outside_s),
                    "longest_absence_s": _round(pd.longest_absence_s),
                    "longest_absence_from": _iso(pd.longest_absence_from, zone),
                    "stops": pd.stops,
                    "stop_s": _round(pd.stop_s),
                    "overlong_stops": pd.overlong_stops,
                    "lost_s": _round(pd.lost_s),
                    "alerts": sum(alerts.values()),
                    "alerts_by_kind": alerts,
                    "tasks_assigned": len(tasks),
                    "tasks_accepted": len(accepted),
                    "tasks_done": len(done),
                    "accept_s_avg": _round(
                        mean_s([(t.accepted_at - t.assigned_at).total_seconds() for t in accepted])
                    ),
                    "done_s_avg": _round(
                        mean_s(
                            [
                                (t.done_at - (t.accepted_at or t.assigned_at)).total_seconds()
                                for t in done
                            ]
                        )
                    ),
                }
            )
    return rows


def grid_day_rows(computed: Computed, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Return one row of facts per grid and day, by day then grid."""
    names = {p.id: p.name for p in computed.people}
    rows = []
    for day in computed.days:
        for grid in computed.grids:
            gd = computed.grid_days[(grid.id, day.day)]
            rows.append(
                {
                    "date": day.day.isoformat(),
                    "day_start": _iso(day.start, zone),
                    "day_end": _iso(day.end, zone),
                    "grid_id": grid.id,
                    "name": grid.name,
                    "parent_id": grid.parent_id,
                    "area_m2": _round(grid.area_m2),
                    "covered_s": _round(gd.covered_s),
                    "covered_hours": sum(1 for s in gd.hourly_covered_s if s > 0),
                    "hourly_covered_s": [round(s) for s in gd.hourly_covered_s],
                    "uncovered": [[_iso(a, zone), _iso(b, zone)] for a, b in gd.uncovered],
                    "uncovered_s": _round(sum(b - a for a, b in gd.uncovered)),
                    "people": [
                        {"person_id": pid, "name": names.get(pid), "inside_s": round(s)}
                        for pid, s in sorted(gd.people_s.items(), key=lambda kv: -kv[1])
                    ],
                    "coverage_pct": _round(gd.coverage_pct, 2),
                    "coverage_method": coverage.method_for(grid.id),
                }
            )
    return rows


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an exported sheet: its header (with its unit) and its value."""

    header: Any
    value: Callable[[dict[str, Any]], Any]


def _hours(key: str) -> Callable[[dict[str, Any]], float | None]:
    """Return a reader of a seconds fact as hours, two decimals."""
    return lambda row: None if row[key] is None else round(row[key] / 3600, 2)


def _minutes(key: str) -> Callable[[dict[str, Any]], float | None]:
    """Return a reader of a seconds fact as minutes, one decimal."""
    return lambda row: None if row[key] is None else round(row[key] / 60, 1)


PERSON_DAYS_TITLE = _l("Person-days")
GRID_DAYS_TITLE = _l("Grid-days")
ASSESSMENT_TITLE = _l("Assessment")

PERSON_DAY_COLUMNS = (
    Column(_l("Date"), lambda r: r["date"]),
    Column(_l("Person ID"), lambda r: r["person_id"]),
    Column(_l("Name"), lambda r: r["name"]),
    Column(_l("Role"), lambda r: r["role"]),
    Column(_l("Assigned grid"), lambda r: r["grid_name"]),
    Column(_l("On duty (h)"), _hours("duty_s")),
    Column(_l("First fix"), lambda r: r["first_fix"]),
    Column(_l("Last fix"), lambda r: r["last_fix"]),
    Column(_l("Distance (km)"), lambda r: round(r["distance_m"] / 1000, 3)),
    Column(_l("In grid (h)"), _hours("inside_s")),
    Column(_l("Off post (min)"), _minutes("outside_s")),
    Column(_l("Longest absence (min)"), _minutes("longest_absence_s")),
    Column(_l("Stops"), lambda r: r["stops"]),
    Column(_l("Stop time (min)"), _minutes("stop_s")),
    Column(_l("Overlong stays"), lambda r: r["overlong_stops"]),
    Column(_l("Lost signal (min)"), _minutes("lost_s")),
    Column(_l("Alerts"), lambda r: r["alerts"]),
    Column(_l("Tasks assigned"), lambda r: r["tasks_assigned"]),
    Column(_l("Tasks accepted"), lambda r: r["tasks_accepted"]),
    Column(_l("Tasks done"), lambda r: r["tasks_done"]),
    Column(_l("Time to accept (min)"), _minutes("accept_s_avg")),
    Column(_l("Time to finish (min)"), _minutes("done_s_avg")),
)

GRID_DAY_COLUMNS = (
    Column(_l("Date"), lambda r: r["date"]),
    Column(_l("Grid ID"), lambda r: r["grid_id"]),
    Column(_l("Grid"), lambda r: r["name"]),
    Column(_l("Coverage (%)"), lambda r: r["coverage_pct"]),
    Column(_l("Patrolled (h)"), _hours("covered_s")),
    Column(_l("Hours with someone inside"), lambda r: r["covered_hours"]),
    Column(_l("Uncovered in working hours (h)"), _hours("uncovered_s")),
    Column(
        _l("Patrolled by (min)"),
        lambda r: ", ".join(f"{p['name']} {round(p['inside_s'] / 60)}" for p in r["people"]),
    ),
    Column(_l("Area (km²)"), lambda r: round(r["area_m2"] / 1e6, 4)),
)


def _chain(unit_id: int | None, parents: Mapping[int, int | None]) -> list[int | None]:
    """Return a unit's id and its ancestors' ids, nearest first."""
    chain: list[int | None] = []
    while unit_id is not None and unit_id not in chain:
        chain.append(unit_id)
        unit_id = parents.get(unit_id)
    return chain


def assessment_rows(
    computed: Computed,
    rules: Sequence[Rule],
    parents: Mapping[int, int | None],
    period: str,
) -> list[dict[str, Any]]:
    """Return the score and verdict of each person and grid for each period of the days.

    Args:
        computed: the person-days and grid-days of the whole range.
        rules: the assessment rules, the default first.
        parents: each unit's parent, to find the most specific rule.
        period: day, week or month.

    Returns:
        One row per period and person, then per period and grid.
    """
    rows: list[dict[str, Any]] = []
    if not computed.days:
        return rows
    coverage = {key: gd.coverage_pct for key, gd in computed.grid_days.items()}
    for first, last in periods(computed.days[0].day, computed.days[-1].day, period):
        day_list = [d.day for d in computed.days if first <= d.day <= last]
        span = {"from": first.isoformat(), "to": last.isoformat()}
        for person in computed.people:
            rule = choose(rules, _chain(person.unit_id, parents), person.role)
            pds = {d: computed.person_days[(person.id, d)] for d in day_list}
            verdict = assess(
                rule,
                day_list,
                {d: pd.duty_s / 3600 for d, pd in pds.items()},
                {d: coverage.get((person.patrol_unit_id, d)) for d in day_list},
                {d: (pd.outside_s or 0.0) / 60 for d, pd in pds.items()},
            )
            rows.append(_verdict_row("person", person.id, person.name, person.role, span, verdict))
        for grid in computed.grids:
            rule = choose([r for r in rules if r.role is None], _chain(grid.id, parents), None)
            gds = {d: computed.grid_days[(grid.id, d)] for d in day_list}
            verdict = assess(
                rule,
                day_list,
                {d: gd.covered_s / 3600 for d, gd in gds.items()},
                {d: gd.coverage_pct for d, gd in gds.items()},
                None,
            )
            rows.append(_verdict_row("grid", grid.id, grid.name, None, span, verdict))
    return rows


def _verdict_row(
    kind: str, id_: int, name: str, role: str | None, span: dict[str, str], verdict: Verdict
) -> dict[str, Any]:
    """Return a verdict as a row of facts."""
    actual = {c["rule"]: c["actual"] for c in verdict.checks}
    return {
        **span,
        "kind": kind,
        "id": id_,
        "name": name,
        "role": role,
        "duty_h": actual.get("duty_h"),
        "coverage_pct": actual.get("coverage_pct"),
        "off_post_min": actual.get("off_post_min"),
        "score": verdict.score,
        "max_score": verdict.max_score,
        "passed": verdict.passed,
        "checks": verdict.checks,
        "reasons": [c["rule"] for c in verdict.reasons],
    }


def reason_text(check: dict[str, Any]) -> Message:
    """Return an unmet requirement in words."""
    values = {"actual": check["actual"], "required": check["required"]}
    if check["rule"] == "duty_h":
        return Message("on duty %(actual)s h of %(required)s h required", **values)
    if check["rule"] == "coverage_pct":
        return Message("coverage %(actual)s %% below the required %(required)s %%", **values)
    if check["rule"] == "off_post_min":
        return Message("off post %(actual)s min, more than the %(required)s min allowed", **values)
    return Message("score %(actual)s below the pass mark %(required)s", **values)


ASSESSMENT_COLUMNS = (
    Column(_l("From"), lambda r: r["from"]),
    Column(_l("To"), lambda r: r["to"]),
    Column(_l("Kind"), lambda r: str(_l("Person") if r["kind"] == "person" else _l("Grid"))),
    Column(_l("ID"), lambda r: r["id"]),
    Column(_l("Name"), lambda r: r["name"]),
    Column(_l("On duty (h)"), lambda r: r["duty_h"]),
    Column(_l("Coverage (%)"), lambda r: r["coverage_pct"]),
    Column(_l("Off post (min)"), lambda r: r["off_post_min"]),
    Column(_l("Score"), lambda r: r["score"]),
    Column(_l("Full marks"), lambda r: r["max_score"]),
    Column(_l("Result"), lambda r: str(_l("Pass") if r["passed"] else _l("Fail"))),
    Column(
        _l("Reasons"),
        lambda r: "; ".join(reason_text(c).localized() for c in r["checks"] if not c["met"]),
    ),
)
