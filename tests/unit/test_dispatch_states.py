"""The task and incident state rules: forward only, idempotent, final states final."""

from __future__ import annotations

import pytest

from tracker.dispatch.states import (
    FINAL_TASK_STATES,
    PHONE_TASK_UPDATES,
    TASK_STATES,
    incident_move_allowed,
    incident_status_from_tasks,
    task_move,
)


@pytest.mark.parametrize(
    ("current", "requested", "expected"),
    [
        ("sent", "delivered", "delivered"),
        ("delivered", "delivered", None),  # a resend
        ("sent", "accepted", "accepted"),  # the delivery ack was lost
        ("delivered", "done", "done"),
        ("accepted", "declined", "declined"),
        ("accepted", "accepted", None),
        ("done", "accepted", None),  # an accept resent after done
        ("declined", "accepted", None),
        ("cancelled", "done", None),  # the dispatcher cancelled it meanwhile
        ("accepted", "cancelled", "cancelled"),
        ("done", "cancelled", None),
    ],
)
def test_task_moves(current, requested, expected):
    assert task_move(current, requested) == expected


def test_no_move_leaves_a_final_state_and_every_move_is_idempotent():
    for final in FINAL_TASK_STATES:
        assert all(task_move(final, r) is None for r in (*PHONE_TASK_UPDATES, "cancelled"))
    for current in TASK_STATES:
        for requested in PHONE_TASK_UPDATES:
            moved = task_move(current, requested)
            if moved is not None:
                assert task_move(moved, requested) is None


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "open"),
        (["cancelled", "declined"], "open"),
        (["sent", "delivered"], "assigned"),
        (["sent", "accepted"], "accepted"),
        (["done", "sent"], "accepted"),
        (["done", "cancelled"], "done"),
    ],
)
def test_incident_status_from_tasks(statuses, expected):
    assert incident_status_from_tasks(statuses) == expected


def test_staff_moves():
    assert incident_move_allowed("accepted", "handled")
    assert not incident_move_allowed("assigned", "closed")
    assert incident_move_allowed("handled", "closed")
    assert incident_move_allowed("closed", "reopened")
    assert not incident_move_allowed("open", "reopened")
    assert not incident_move_allowed("closed", "cancelled")
