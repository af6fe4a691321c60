"""Credentials: device tokens, staff passwords and the staff login session."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, jsonify, request
from flask_login import current_user
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db, login
from .models import User

F = TypeVar("F", bound=Callable[..., Any])

# Hashing a password for a user name that does not exist costs the same as checking a real
# one, so response times do not reveal which user names exist.
_DUMMY_HASH = generate_password_hash("not a real password")


def new_device_token() -> str:
    """Return a fresh random device token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a device token is stored.

    Tokens carry 256 random bits, so a fast hash is enough: unlike passwords they
    cannot be guessed from a dictionary.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """Return a scrypt hash of a staff password."""
    return generate_password_hash(password, method="scrypt")


def check_password(user: User | None, password: str) -> bool:
    """Return whether `password` is the user's; spends the same time for unknown users."""
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password) and user.active


@login.user_loader
def load_user(user_id: str) -> User | None:
    """Load the staff account of a session."""
    return db.session.get(User, int(user_id))


@login.unauthorized_handler
def unauthorized():
    """Answer 401 in JSON: the API has no login page to redirect to."""
    return jsonify(error="session: log in first"), 401


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Refuse cross-site state changes made with a staff session cookie.

    The cookie is SameSite=Lax, and on top of that a cookie-authenticated unsafe request
    must come from this origin (Origin header, when the browser sends one) and carry JSON,
    which an HTML form on another site cannot send without a CORS preflight.
    """

    @app.before_request
    def refuse_cross_site() -> None:
        if request.method not in UNSAFE_METHODS or "Authorization" in request.headers:
            return
        if not current_user.is_authenticated and request.endpoint != "api.login":
            return
        origin = request.headers.get("Origin")
        if origin is not None and origin != request.host_url.rstrip("/"):
            abort(403, description="origin: cross-site request refused")
        if request.method in {"POST", "PUT", "PATCH"} and not request.is_json:
            abort(415, description="content-type: must be application/json")


def require_role(*roles: str) -> Callable[[F], F]:
    """Allow a view only to logged-in staff with one of `roles` (403 otherwise)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login.unauthorized()
            if current_user.role not in roles:
                abort(403, description=f"role: needs {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
