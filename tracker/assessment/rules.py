"""Assessment rules (考核规则) per unit or role, and the scores they give (pure).

A rule names what it applies to (a unit and everything below it, a person role, or
both; neither for the default) and what it requires: hours on duty per working day,
coverage %, at most so many minutes off post per working day, and the score table of
coverage (≥ 95 % full marks, 90–94 % 8 of 10, …). The most specific rule wins: one
naming the role beats one that does not, then the nearest unit beats one above it.
Grids are scored by rules without a role; for a grid, "hours on duty" are the hours
someone on duty was inside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ..messages import UserError

DEFAULT_SCORES = ((95.0, 10.0), (90.0, 8.0), (85.0, 6.0), (0.0, 0.0))


@dataclass(frozen=True, slots=True)
class Rule:
    """What an assessment requires, and of whom."""

    unit_id: int | None = None
    role: str | None = None
    min_duty_h: float | None = 6.0
    min_coverage_pct: float | None = 85.0
    max_off_post_min: float | None = 60.0
    # (at least this coverage %, this score), highest first; the first met gives the score.
    scores: tuple[tuple[float, float], ...] = DEFAULT_SCORES
    pass_score: float = 6.0
    # ISO weekdays (1 = Monday) whose days count towards a period's requirements.
    workdays: tuple[int, ...] = (1, 2, 3, 4, 5)

    @property
    def max_score(self) -> float:
        """Return the best score of the table."""
        return max(score for _, score in self.scores)

    def score(self, coverage_pct: float | None) -> float:
        """Return the score of a coverage %: the first threshold met, from the top."""
        if coverage_pct is None:
            return 0.0
        for threshold, score in sorted(self.scores, reverse=True):
            if coverage_pct >= threshold:
                return score
        return 0.0


FIELDS = {
    "unit_id": int,
    "role": str,
    "min_duty_h": float,
    "min_coverage_pct": float,
    "max_off_post_min": float,
    "pass_score": float,
}


def parse_rules(text: str) -> list[Rule]:
    """Return the rules of ASSESSMENT_RULES (a JSON list of objects), the default first.

    Raises:
        UserError: naming the rule and the field that breaks the format.
    """
    rules = [Rule()]
    if not text.strip():
        return rules
    try:
        items = json.loads(text)
    except ValueError:
        raise UserError("ASSESSMENT_RULES: must be a JSON list of rules") from None
    if not isinstance(items, list):
        raise UserError("ASSESSMENT_RULES: must be a JSON list of rules")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise UserError("ASSESSMENT_RULES[%(i)s]: must be an object", i=i)
        values: dict[str, Any] = {}
        for key, value in item.items():
            try:
                if key in FIELDS:
                    values[key] = None if value is None else FIELDS[key](value)
                elif key == "scores":
                    values[key] = tuple((float(t), float(s)) for t, s in value)
                elif key == "workdays":
                    values[key] = tuple(int(d) for d in value)
                else:
                    raise KeyError(key)
            except (TypeError, ValueError, KeyError):
                raise UserError(
                    "ASSESSMENT_RULES[%(i)s].%(field)s: not a valid value", i=i, field=key
                ) from None
        rules.append(Rule(**values))
    return rules


def choose(rules: Sequence[Rule], unit_chain: Sequence[int | None], role: str | None) -> Rule:
    """Return the most specific rule for a unit (its id and its ancestors', nearest first)."""
    best, best_key = rules[0], (-1, -1)
    for rule in rules:
        if rule.role is not None and rule.role != role:
            continue
        if rule.unit_id is None:
            depth = 0
        elif rule.unit_id in unit_chain:
            depth = len(unit_chain) - unit_chain.index(rule.unit_id)
        else:
            continue
        key = (1 if rule.role is not None else 0, depth)
        if key > best_key:
            best, best_key = rule, key
    return best


def periods(first: date, last: date, period: str) -> list[tuple[date, date]]:
    """Return the day, ISO-week or month periods (first, last day) that cover a range."""
    out = []
    day = first
    while day <= last:
        if period == "day":
            end = day
        elif period == "week":
            end = day + timedelta(days=6 - day.weekday())
        else:
            following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            end = following - timedelta(days=1)
        end = min(end, last)
        out.append((day, end))
        day = end + timedelta(days=1)
    return out


@dataclass(slots=True)
class Verdict:
    """A score and a pass or fail, with every requirement checked."""

    score: float
    max_score: float
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> list[dict[str, Any]]:
        """Return the requirements that were not met."""
        return [c for c in self.checks if not c["met"]]


def assess(
    rule: Rule,
    day_list: Sequence[date],
    duty_h: Mapping[date, float],
    coverage_pct: Mapping[date, float | None],
    off_post_min: Mapping[date, float] | None,
) -> Verdict:
    """Score one person or grid over a period's days.

    Args:
        rule: the rule that applies.
        day_list: the period's days.
        duty_h: hours on duty per day (for a grid: hours with someone inside).
        coverage_pct: the coverage % per day (the assigned grid's, for a person).
        off_post_min: minutes off post per day; None for a grid.

    Returns:
        The verdict; requirements scale with the period's working days.
    """
    work = [d for d in day_list if d.isoweekday() in rule.workdays] or list(day_list)
    workdays = sum(1 for d in day_list if d.isoweekday() in rule.workdays)
    checks = []
    if rule.min_duty_h is not None:
        required = rule.min_duty_h * workdays
        actual = sum(duty_h.get(d, 0.0) for d in day_list)
        checks.append(
            {
                "rule": "duty_h",
                "required": round(required, 2),
                "actual": round(actual, 2),
                "met": actual >= required,
            }
        )
    values = [v for d in work if (v := coverage_pct.get(d)) is not None]
    coverage = sum(values) / len(values) if values else None
    if rule.min_coverage_pct is not None:
        checks.append(
            {
                "rule": "coverage_pct",
                "required": rule.min_coverage_pct,
                "actual": None if coverage is None else round(coverage, 2),
                "met": coverage is not None and coverage >= rule.min_coverage_pct,
            }
        )
    if rule.max_off_post_min is not None and off_post_min is not None:
        allowed = rule.max_off_post_min * max(workdays, 1)
        actual = sum(off_post_min.get(d, 0.0) for d in day_list)
        checks.append(
            {
                "rule": "off_post_min",
                "required": round(allowed, 1),
                "actual": round(actual, 1),
                "met": actual <= allowed,
            }
        )
    score = rule.score(coverage)
    checks.append(
        {
            "rule": "score",
            "required": rule.pass_score,
            "actual": score,
            "met": score >= rule.pass_score,
        }
    )
    return Verdict(score, rule.max_score, all(c["met"] for c in checks), checks)
