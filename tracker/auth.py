"""Credentials: device tokens, staff passwords, revocable staff sessions and login throttling."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from gevent.threadpool import ThreadPool
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit, store
from .extensions import db, login
from .models import User

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)

# Hashing a password for a user name that does not exist costs the same as checking a real
# one, so response times do not reveal which user names exist.
_DUMMY_HASH = generate_password_hash("not a real password")

# scrypt takes tens of milliseconds of CPU. On the event loop it would stall every phone's
# ack while it runs; on one worker thread a login flood queues behind itself and leaves the
# other core to ingest and PostgreSQL.
_password_pool: ThreadPool | None = None

limiter = Limiter(key_func=get_remote_address, strategy="moving-window")


def new_device_token() -> str:
    """Return a fresh random device token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest under which a device or session token is stored.

    Tokens carry 256 random bits, so a fast hash is enough: unlike passwords they
    cannot be guessed from a dictionary.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """Return a scrypt hash of a staff password."""
    return _off_the_loop(generate_password_hash, password, "scrypt")


def check_password(user: User | None, password: str) -> bool:
    """Return whether `password` is the user's; spends the same time for unknown users."""
    if user is None:
        _off_the_loop(check_password_hash, _DUMMY_HASH, password)
        return False
    return _off_the_loop(check_password_hash, user.password_hash, password) and user.active


def _off_the_loop(function: Callable[..., Any], *args: Any) -> Any:
    """Run a CPU-heavy function on the password thread, waiting cooperatively."""
    global _password_pool
    if _password_pool is None:
        _password_pool = ThreadPool(1)
    return _password_pool.apply(_at_low_priority, (function, *args))


def _at_low_priority(function: Callable[..., Any], *args: Any) -> Any:
    """Run `function` with this thread at the lowest CPU priority (Linux: nice is per thread).

    A login then takes the CPU that ingest and PostgreSQL leave over: under a login flood
    logins slow down, phones do not.
    """
    # Elsewhere than Linux, or where it is not allowed, hashing is still kept off the loop.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    return function(*args)


# --- staff sessions ---------------------------------------------------------------


def _oldest_valid_login() -> datetime:
    """Return the start time before which a login has expired."""
    return datetime.now(UTC) - timedelta(seconds=current_app.config["STAFF_SESSION_MAX_AGE_S"])


def start_session(user: User) -> None:
    """Log `user` in: record a new login and put its token in the session cookie."""
    token = secrets.token_urlsafe(32)
    store.accounts.start_staff_session(db.session, user.id, hash_token(token))
    db.session.commit()
    user.session_token = token
    login_user(user)
    audit.record_access("session.login", user_id=user.id, username=user.username)


def end_session() -> None:
    """Log the current staff account out: end its login, so a copy of the cookie is dead."""
    if current_user.is_authenticated:
        store.accounts.end_staff_session(
            db.session, hash_token(current_user.session_token), "logout"
        )
        db.session.commit()
        audit.record_access(
            "session.logout", user_id=current_user.id, username=current_user.username
        )
        log.info("user %s logged out", current_user.username)
    logout_user()


def end_all_sessions(user_id: int, reason: str) -> int:
    """End every login of an account (password changed, disabled, ended by an admin)."""
    ended = store.accounts.end_user_sessions(db.session, user_id, reason)
    db.session.commit()
    audit.record_access(
        "session.end_all", user_id=user_id, username="", detail={"reason": reason, "ended": ended}
    )
    return ended


def session_token_hash() -> str | None:
    """Return the hash of the current request's login token, if a staff account is logged in."""
    if not current_user.is_authenticated:
        return None
    return hash_token(current_user.session_token)


def open_sessions(token_hashes: set[str]) -> set[str]:
    """Return those of the logins that may still be used (store.accounts.open_staff_sessions)."""
    return store.accounts.open_staff_sessions(db.session, token_hashes, _oldest_valid_login())


@login.user_loader
def load_user(token: str) -> User | None:
    """Load the staff account of an open, unexpired login; None ends the request's session."""
    token_hash = hash_token(token)
    oldest = _oldest_valid_login()
    user = store.accounts.user_of_staff_session(db.session, token_hash, oldest)
    if user is not None:
        user.session_token = token
        return user
    # The first request with a login past its age ends it, so the trail shows the end.
    record_expired(store.accounts.end_expired_staff_sessions(db.session, oldest, token_hash))
    return None


def end_expired_sessions() -> int:
    """End (and audit) every login past STAFF_SESSION_MAX_AGE_S; for the cron prune."""
    ended = store.accounts.end_expired_staff_sessions(db.session, _oldest_valid_login())
    record_expired(ended)
    return len(ended)


def record_expired(ended: list[tuple[int, str]]) -> None:
    """Commit the ended logins and add a `session.expired` audit row for each."""
    if not ended:
        return
    db.session.commit()
    for user_id, username in ended:
        audit.record_access("session.expired", user_id=user_id, username=username)


@login.unauthorized_handler
def unauthorized():
    """Answer 401 in JSON: the API has no login page to redirect to."""
    return jsonify(error="session: log in first"), 401


# --- login throttling ----------------------------------------------------------------


def login_account_key() -> str:
    """Return the rate-limit key of the account a login names (case and spaces folded)."""
    body = request.get_json(silent=True)
    username = body.get("username") if isinstance(body, dict) else None
    name = username.strip().lower()[:64] if isinstance(username, str) else ""
    return f"login-account:{name}"


def failed_login(response: Any) -> bool:
    """Count only failed logins against the limits, so staff who type right are never slowed."""
    return response.status_code == 401


def throttle_login(view: F) -> F:
    """Limit failed logins per account and per client address (LOGIN_LIMIT_* settings)."""
    per_account = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_ACCOUNT"],
        key_func=login_account_key,
        deduct_when=failed_login,
        scope="login-account",
    )
    per_address = limiter.limit(
        lambda: current_app.config["LOGIN_LIMIT_ADDRESS"],
        deduct_when=failed_login,
        scope="login-address",
    )
    return per_address(per_account(view))  # type: ignore[return-value]


def _too_many_logins(exc: Any):
    """Answer a throttled login with 429, the seconds to wait, and a Retry-After header."""
    limit = limiter.current_limit
    reset_at = limit.reset_at if limit is not None else datetime.now(UTC).timestamp() + 60
    retry_after_s = max(1, int(reset_at - datetime.now(UTC).timestamp()) + 1)
    response = jsonify(
        error=f"login: too many failed attempts, try again in {retry_after_s} s",
        retry_after_s=retry_after_s,
    )
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after_s)
    return response


# --- cross-site requests -------------------------------------------------------------

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def init_app(app: Flask) -> None:
    """Bind the login limiter, and refuse cross-site state changes made with a staff cookie.

    The cookie is SameSite=Lax, and on top of that a cookie-authenticated unsafe request
    must come from this origin (Origin header, when the browser sends one) and carry JSON,
    which an HTML form on another site cannot send without a CORS preflight. The check
    depends on what authenticates the request, not on which headers it has: a request
    that carries a device's Authorization header and a staff cookie is still checked.
    """
    app.config.setdefault(
        "RATELIMIT_STORAGE_URI", app.config.get("SOCKETIO_MESSAGE_QUEUE") or "memory://"
    )
    # Retry-After is set by _too_many_logins, the same figure as in the body.
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter.init_app(app)
    # One line per refused attempt would turn a flood into a flood of log lines too.
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)
    app.register_error_handler(429, _too_many_logins)

    @app.after_request
    def audit_failed_login(response: Any) -> Any:
        # Here rather than in the view: the view answers 401 by abort(), past its own code.
        if request.endpoint == "api.login" and response.status_code == 401:
            body = request.get_json(silent=True)
            typed = body.get("username") if isinstance(body, dict) else None
            name = typed if isinstance(typed, str) else ""
            account = store.accounts.user_by_username(db.session, name) if name else None
            audit.record_access(
                "session.login_failed", user_id=account.id if account else None, username=name
            )
        return response

    @app.before_request
    def refuse_cross_site() -> None:
        if request.method not in UNSAFE_METHODS or request.endpoint in DEVICE_TOKEN_ENDPOINTS:
            return
        if request.endpoint != "api.login" and not current_user.is_authenticated:
            return
        origin = request.headers.get("Origin")
        if origin is not None and origin != request.host_url.rstrip("/"):
            abort(403, description="origin: cross-site request refused")
        if request.endpoint in FILE_UPLOAD_ENDPOINTS and request.mimetype == "multipart/form-data":
            # A form post can come from any site; only a same-origin Origin lets it through.
            if origin is None:
                abort(403, description="origin: a file upload must come from this site's pages")
            return
        if request.method in {"POST", "PUT", "PATCH"} and not request.is_json:
            abort(415, description="content-type: must be application/json")


# Authenticated by a device token in the Authorization header and never by the staff
# cookie, which another site cannot make a browser send; a phone app in a browser that is
# also logged in to the command centre sends the cookie along and must not be refused.
DEVICE_TOKEN_ENDPOINTS = frozenset({"reports_api.create_report"})
# Staff endpoints that take a file as multipart/form-data (a roster from Excel). Browsers
# send Origin with every POST; such an upload is accepted only with this site's Origin.
FILE_UPLOAD_ENDPOINTS = frozenset({"admin_api.roster_preview", "admin_api.roster_import"})


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
