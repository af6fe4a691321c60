"""The rules for what staff type about privacy; the API and the CLI check the same."""

from __future__ import annotations

import re
from datetime import time

from ..messages import Message

LEGAL_BASES = ("consent", "contract", "hr_management", "legal_duty", "emergency", "public_interest")
TRACKING_POLICIES = ("always", "on_duty", "duty_hours")
LEGAL_BASIS_NOTE_MAX_CHARS = 500
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_duty_hours(value: str) -> tuple[time, time] | Message:
    """Return `HH:MM-HH:MM` as (start, end), or the rule it breaks.

    An end before the start means the hours pass midnight (22:00-06:00).
    """
    match = _HOURS.match(value.strip())
    if match is None:
        return Message("must be HH:MM-HH:MM, for example 08:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        return Message("start and end must differ")
    return start, end


def tracking_policy_problem(policy: str | None, hours: tuple[time, time] | None) -> Message | None:
    """Return the rule a policy and its hours break together, or None."""
    if policy is not None and policy not in TRACKING_POLICIES:
        return Message("must be one of %(choices)s", choices=", ".join(TRACKING_POLICIES))
    if policy == "duty_hours" and hours is None:
        return Message("duty_hours needs the duty hours")
    return None


def legal_basis_problem(basis: str | None) -> Message | None:
    """Return the rule a legal basis breaks, or None."""
    if basis is not None and basis not in LEGAL_BASES:
        return Message("must be one of %(choices)s", choices=", ".join(LEGAL_BASES))
    return None
