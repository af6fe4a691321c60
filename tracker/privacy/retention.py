"""Retention by data class: each kind of data is kept as long as its class allows.

Positions go by whole days (dropping a partition costs nothing); alerts, ended incidents
and audit rows by age. The audit trail is pruned only through audit_prune(), the one
database function its append-only trigger allows (migration 0012).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from .. import store


@dataclass(frozen=True, slots=True)
class RetentionDays:
    """How many days each class of data is kept."""

    positions: int
    alerts: int
    incidents: int
    audit: int

    @classmethod
    def from_config(cls, config: Any, **overrides: int | None) -> RetentionDays:
        """Return the configured days, with any override given (None keeps the setting)."""
        days = {
            "positions": config["RETENTION_DAYS"],
            "alerts": config["RETENTION_ALERTS_DAYS"],
            "incidents": config["RETENTION_INCIDENTS_DAYS"],
            "audit": config["RETENTION_AUDIT_DAYS"],
        }
        days.update({k: v for k, v in overrides.items() if v is not None})
        for name, value in days.items():
            if value < 1:
                raise ValueError(f"retention of {name}: must be at least 1 day, got {value}")
        return cls(**days)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one prune dropped, class by class."""

    position_days: list[date]
    positions_before: date
    alerts: int
    incidents: int
    audit_events: int

    def as_dict(self) -> dict[str, Any]:
        """Return the counts, as the prune's audit row records them."""
        return {
            "position_partitions": len(self.position_days),
            "positions_before": self.positions_before.isoformat(),
            "alerts": self.alerts,
            "incidents": self.incidents,
            "audit_events": self.audit_events,
        }


def prune(session: Session, now: datetime, days: RetentionDays) -> Pruned:
    """Drop every class of data older than its retention, in the caller's transaction.

    Args:
        session: a session; the caller commits.
        now: the current time (aware; tests inject it).
        days: how long each class is kept.

    Returns:
        What was dropped.
    """
    cutoff_day = now.date() - timedelta(days=days.positions)
    dropped = [d for d in sorted(store.positions.partition_days(session)) if d < cutoff_day]
    for day in dropped:
        store.positions.drop_partition(session, day)
    return Pruned(
        position_days=dropped,
        positions_before=cutoff_day,
        alerts=store.privacy.prune_alerts(session, now - timedelta(days=days.alerts)),
        incidents=store.privacy.prune_incidents(session, now - timedelta(days=days.incidents)),
        audit_events=store.audit.prune_audit(session, now - timedelta(days=days.audit)),
    )
