"""The states of tasks and incidents, and the moves between them (docs/incidents.md).

Pure functions: no database, no Flask. A phone resends its status updates until one is
acknowledged, and the server may have applied it before the acknowledgement was lost, so
every move here is idempotent and only goes forward: an update that is already applied, or
that arrives after a final state, is no move at all.
"""

from __future__ import annotations

from collections.abc import Iterable

TASK_STATES = ("sent", "delivered", "accepted", "declined", "done", "cancelled")
FINAL_TASK_STATES = frozenset({"declined", "done", "cancelled"})
# What a phone may report; `cancelled` is the dispatcher's.
PHONE_TASK_UPDATES = ("delivered", "accepted", "declined", "done")
# Where each phone update may come from.
_TASK_MOVES = {
    "delivered": frozenset({"sent"}),
    "accepted": frozenset({"sent", "delivered"}),
    "declined": frozenset({"sent", "delivered", "accepted"}),
    "done": frozenset({"sent", "delivered", "accepted"}),
    "cancelled": frozenset({"sent", "delivered", "accepted"}),
}

# Set by staff; the tasks no longer decide an incident in one of these.
STAFF_INCIDENT_STATES = frozenset({"handled", "closed", "cancelled"})
INCIDENT_STATES = ("open", "assigned", "accepted", "done", "handled", "closed", "cancelled")
_INCIDENT_MOVES = {
    "handled": frozenset({"open", "assigned", "accepted", "done"}),
    "closed": frozenset({"handled"}),
    "cancelled": frozenset({"open", "assigned", "accepted", "done"}),
    "reopened": frozenset({"handled", "closed", "cancelled"}),
}


def task_move(current: str, requested: str) -> str | None:
    """Return the status a task moves to on a request, or None when nothing changes.

    Args:
        current: the task's stored status.
        requested: a phone update (delivered, accepted, declined, done) or `cancelled`.
    """
    if requested in _TASK_MOVES and current in _TASK_MOVES[requested]:
        return requested
    return None


def incident_move_allowed(current: str, action: str) -> bool:
    """Return whether staff may take an incident in `current` through `action`.

    Args:
        current: the incident's status.
        action: handled, closed, cancelled or reopened.
    """
    return current in _INCIDENT_MOVES.get(action, frozenset())


def incident_status_from_tasks(task_statuses: Iterable[str]) -> str:
    """Return the status an incident's tasks give it (when staff have not set one).

    Cancelled and declined tasks do not count: an incident whose every task was cancelled
    or declined is open again, waiting for someone to be sent.
    """
    standing = [s for s in task_statuses if s not in ("cancelled", "declined")]
    if not standing:
        return "open"
    if all(s == "done" for s in standing):
        return "done"
    if any(s in ("accepted", "done") for s in standing):
        return "accepted"
    return "assigned"
