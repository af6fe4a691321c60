"""The one place that emits to command-centre viewers on /live."""

from __future__ import annotations

import logging
from typing import Any

from .. import metrics
from ..extensions import db, socketio
from .rooms import rooms_for_person, rooms_for_unit

log = logging.getLogger(__name__)

NAMESPACE = "/live"


def publish_alert(alert: dict[str, Any], person_id: int) -> None:
    """Push an `alert` about a person at once to every viewer whose scope covers them."""
    rooms = rooms_for_person(db.session, person_id)
    socketio.emit("alert", alert, namespace=NAMESPACE, to=rooms)
    metrics.alerts_raised.labels(str(alert.get("kind"))).inc()
    log.info("alert %s about person %d sent to %s", alert.get("kind"), person_id, rooms)


def publish_positions(
    positions: list[dict[str, Any]], to: str, skip_sids: list[str] | None = None
) -> None:
    """Push one batch of `positions` to a scope room, or to one viewer's sid."""
    socketio.emit(
        "positions", {"positions": positions}, namespace=NAMESPACE, to=to, skip_sid=skip_sids
    )


def publish_incident(incident: dict[str, Any], unit_id: int | None) -> None:
    """Push an `incident` update to the viewers whose scope covers the incident's unit."""
    rooms = rooms_for_unit(db.session, unit_id)
    socketio.emit("incident", incident, namespace=NAMESPACE, to=rooms)
    log.info("incident %s (%s) sent to %s", incident.get("id"), incident.get("status"), rooms)
