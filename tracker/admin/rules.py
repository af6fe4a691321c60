"""The rules for what staff type, and the typed errors that name the broken rule.

The API, the roster import and the CLI all check names, phones, roles, labels, user names
and passwords with these functions; each returns the rule a value breaks as a Message (to
fill into "FIELD: rule"), or None when the value is acceptable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..messages import Message, UserError
from ..zones.importer import name_problem

PERSON_NAME_MAX_CHARS = 100
DEVICE_LABEL_MAX_CHARS = 100
USERNAME_MAX_CHARS = 64  # users.username is varchar(64)
PHONE_PATTERN = re.compile(r"[0-9+\- ]{1,32}")  # people.phone is varchar(32)
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 1024
RESERVED_LABEL = "track import"  # store.devices.IMPORT_DEVICE_LABEL


class AdminError(UserError):
    """A field breaks a rule (400); `field` names it, `problem` is the rule."""

    status = 400

    def __init__(self, template: str, /, **params: Any) -> None:
        """Keep the msgid template and its parameters; `field`, if given, names the field."""
        super().__init__(template, **params)
        self.field: str | None = params.get("field")


class AdminForbidden(AdminError):  # noqa: N818 - the family is AdminError
    """The account's role may not, or the target lies outside its scope (403)."""

    status = 403


class AdminNotFound(AdminError):  # noqa: N818
    """Unknown, or not visible to the account (404)."""

    status = 404


class AdminConflict(AdminError):  # noqa: N818
    """A duplicate: a person's phone number, a user name (409)."""

    status = 409


def invalid(field: str, problem: Message) -> AdminError:
    """Return the 400 error `FIELD: rule`."""
    return AdminError("%(field)s: %(problem)s", field=field, problem=problem)


def text_problem(value: Any, max_chars: int) -> Message | None:
    """Return the rule a name or label (already stripped) breaks, or None."""
    if not isinstance(value, str):
        return Message("must be text")
    return name_problem(value, max_chars)


def normal_phone(phone: str) -> str:
    """Return a phone number as it is compared and stored: without spaces and dashes."""
    return phone.replace(" ", "").replace("-", "")


def phone_problem(phone: Any) -> Message | None:
    """Return the rule a phone number (already stripped) breaks, or None."""
    if (
        not isinstance(phone, str)
        or not PHONE_PATTERN.fullmatch(phone)
        or not any(c.isdigit() for c in phone)
    ):
        return Message("must be 1 to 32 digits, spaces, + and -, with at least one digit")
    return None


def role_problem(role: Any, roles: Sequence[str]) -> Message | None:
    """Return the rule a role breaks (one of `roles`), or None."""
    if isinstance(role, str) and role in roles:
        return None
    return Message("must be one of %(roles)s, got %(role)r", roles=", ".join(roles), role=role)


def label_problem(label: Any) -> Message | None:
    """Return the rule a device label (already stripped) breaks, or None."""
    if problem := text_problem(label, DEVICE_LABEL_MAX_CHARS):
        return problem
    if label == RESERVED_LABEL:
        return Message("%(label)r is reserved for imported tracks", label=label)
    return None


def username_problem(username: Any) -> Message | None:
    """Return the rule a staff user name breaks, or None."""
    if not isinstance(username, str):
        return Message("must be text")
    if not username:
        return Message("must not be empty")
    if len(username) > USERNAME_MAX_CHARS:
        return Message(
            "must be at most %(max_chars)s characters, got %(count)s",
            max_chars=USERNAME_MAX_CHARS,
            count=len(username),
        )
    if any(c.isspace() or not c.isprintable() for c in username):
        return Message("must not contain spaces or control characters")
    return None


def password_problem(password: Any) -> Message | None:
    """Return the rule a new staff password breaks (8 to 1024 characters), or None."""
    if not isinstance(password, str):
        return Message("must be text")
    if len(password) < PASSWORD_MIN_CHARS:
        return Message("must be at least %(min_chars)s characters", min_chars=PASSWORD_MIN_CHARS)
    if len(password) > PASSWORD_MAX_CHARS:
        return Message(
            "must be at most %(max_chars)s characters, got %(count)s",
            max_chars=PASSWORD_MAX_CHARS,
            count=len(password),
        )
    return None
