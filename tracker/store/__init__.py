"""Every SQL and PostGIS query of the tracker, one module per domain.

Functions take a SQLAlchemy session (or connection) and return rows, model objects or
select() statements that callers may filter further. All values travel as bound
parameters; no SQL is ever assembled from strings. Callers write `store.<domain>.<query>`,
so a call site says which domain it reads or changes.

"""

from . import (
    accounts,
    alerts,
    assessment,
    audit,
    devices,
    history,
    incidents,
    latest,
    people,
    positions,
    privacy,
    reports,
    scope,
    tracks,
    zones,
)

__all__ = [
    "accounts",
    "alerts",
    "assessment",
    "audit",
    "devices",
    "history",
    "incidents",
    "latest",
    "people",
    "positions",
    "privacy",
    "reports",
    "scope",
    "tracks",
    "zones",
]
