"""Settings read from the environment, with defaults that serve the embedded set-up."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"


def _embedded_database_url() -> str:
    """Return the URL of the project-local cluster that scripts/pg.sh manages."""
    return f"postgresql+psycopg2://postgres@/tracker?host={VAR_DIR / 'pg' / 'run'}"


def _secret_key() -> str:
    """Return SECRET_KEY from the environment, or a key kept in var/ across restarts."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        # Create with 0600 so the key is never world-readable, even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class Config:
    """Default configuration; every value can be overridden by an environment variable."""

    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or _embedded_database_url()
    SQLALCHEMY_ENGINE_OPTIONS = {
        "pool_pre_ping": True,
        "pool_size": _int("DB_POOL_SIZE", 10),
        "max_overflow": _int("DB_MAX_OVERFLOW", 20),
        "pool_timeout": 10,
    }
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # Staff sessions: HttpOnly and SameSite so that other sites cannot ride on them.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    # People roles are open-ended: deployments may add their own.
    PERSON_ROLES = tuple(
        os.environ.get("PERSON_ROLES", "volunteer,street_chief,grid_worker,patrol").split(",")
    )

    # Ingest rules (docs/protocol.md).
    MAX_BATCH_ITEMS = 500
    MAX_PAYLOAD_BYTES = _int("MAX_PAYLOAD_BYTES", 256 * 1024)
    # Werkzeug answers 413 itself beyond this, before a body is read into memory.
    MAX_CONTENT_LENGTH = 4 * 1024 * 1024
    MAX_FUTURE_S = 300
    MAX_AGE_S = _int("MAX_AGE_S", 7 * 24 * 3600)

    # Group commit: flush when this many rows wait, or this long after the first one.
    INGEST_FLUSH_INTERVAL_S = _float("INGEST_FLUSH_INTERVAL_S", 0.05)
    INGEST_FLUSH_ROWS = _int("INGEST_FLUSH_ROWS", 5000)
    INGEST_ACK_TIMEOUT_S = _float("INGEST_ACK_TIMEOUT_S", 10.0)
    # Future partitions of positions are created this many days ahead.
    PARTITION_DAYS_AHEAD = _int("PARTITION_DAYS_AHEAD", 7)

    # Socket.IO: one Redis URL makes several processes share one feed.
    SOCKETIO_MESSAGE_QUEUE = os.environ.get("SOCKETIO_MESSAGE_QUEUE") or None
    # Engine.IO closes a connection whose message exceeds this; the ingest cap above is
    # lower so that an oversized batch is answered with an error, not a disconnect.
    SOCKETIO_MAX_HTTP_BUFFER_SIZE = 4 * 1024 * 1024

    def __init__(self) -> None:
        self.SECRET_KEY = _secret_key()
