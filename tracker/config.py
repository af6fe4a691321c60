"""Settings read from the environment, with defaults that serve the embedded set-up."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy.engine import make_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VAR_DIR = PROJECT_ROOT / "var"


def _embedded_database_url() -> str:
    """Return the URL of the project-local cluster that scripts/pg.sh manages."""
    return f"postgresql+psycopg2://postgres@/tracker?host={VAR_DIR / 'pg' / 'run'}"


def database_connect_args(url: str) -> dict[str, str]:
    """Return psycopg2's connect arguments for the app's connections to `url`.

    PostgreSQL's JIT compiler starts when a plan's estimated cost passes a threshold; the
    group commit's statement crossed it now and then and spent 400-500 ms compiling a plan
    that runs in 20 ms. Every query of this app is short, so JIT never pays: it is turned
    off per connection. connect_args replace a libpq `options` given in the URL, so those
    are kept by joining them here.
    """
    options = make_url(url).query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    return {"options": f"{options} -c jit=off".strip()}


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
        # connect_args come from database_connect_args(), once the URL is final.
    }
    SQLALCHEMY_TRACK_MODIFICATIONS = False

    # Staff sessions: HttpOnly and SameSite so that other sites cannot ride on them.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # A login expires this long after it started, whatever the browser keeps.
    STAFF_SESSION_MAX_AGE_S = _int("STAFF_SESSION_MAX_AGE_S", 12 * 3600)
    # Failed logins allowed per account name and per client address (Flask-Limiter
    # notation); successful logins do not count. With several processes the counters
    # live in Redis: RATELIMIT_STORAGE_URI, by default the Socket.IO message queue's URL.
    LOGIN_LIMIT_ACCOUNT = os.environ.get("LOGIN_LIMIT_ACCOUNT", "10 per 5 minutes")
    LOGIN_LIMIT_ADDRESS = os.environ.get("LOGIN_LIMIT_ADDRESS", "30 per 5 minutes")
    if os.environ.get("RATELIMIT_STORAGE_URI"):
        RATELIMIT_STORAGE_URI = os.environ["RATELIMIT_STORAGE_URI"]

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
    # `flask partitions prune` drops days of positions older than this, and deletes alerts,
    # ended incidents and audit rows older than theirs (docs/privacy.md).
    RETENTION_DAYS = _int("RETENTION_DAYS", 90)
    RETENTION_ALERTS_DAYS = _int("RETENTION_ALERTS_DAYS", 365)
    RETENTION_INCIDENTS_DAYS = _int("RETENTION_INCIDENTS_DAYS", 365)
    # PIPL art. 55-56: records of processing are kept at least three years.
    RETENTION_AUDIT_DAYS = _int("RETENTION_AUDIT_DAYS", 3 * 365 + 1)
    # Tracking policy of units that set none (docs/privacy.md): `on_duty` (PIPL art. 6: only
    # what the purpose needs), `duty_hours`, or `always` for an office with a legal basis
    # for it; whether the live map shows off-duty people of units that set nothing; how
    # often each process re-reads the units' policies and who is on duty.
    TRACKING_POLICY = os.environ.get("TRACKING_POLICY", "on_duty")
    LIVE_SHOWS_OFF_DUTY = os.environ.get("LIVE_SHOWS_OFF_DUTY", "0") == "1"
    TRACKING_POLICY_REFRESH_S = _float("TRACKING_POLICY_REFRESH_S", 10.0)
    # Operations (docs/operations.md): the addresses or networks that may read /metrics
    # (comma-separated; empty = everyone), how long fixes may arrive without any being
    # stored before /readyz fails, and `json` for one JSON object per log line.
    METRICS_ALLOW = os.environ.get("METRICS_ALLOW", "127.0.0.1,::1")
    READY_STORE_STALL_S = _float("READY_STORE_STALL_S", 30.0)
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")

    # Socket.IO: one Redis URL makes several processes share one feed.
    SOCKETIO_MESSAGE_QUEUE = os.environ.get("SOCKETIO_MESSAGE_QUEUE") or None
    # How many proxies (nginx) stand in front; their X-Forwarded-* headers are then trusted.
    PROXY_HOPS = _int("PROXY_HOPS", 0)
    # Engine.IO closes a connection whose message exceeds this; the ingest cap above is
    # lower so that an oversized batch is answered with an error, not a disconnect.
    SOCKETIO_MAX_HTTP_BUFFER_SIZE = 4 * 1024 * 1024

    # The address phones reach the server at; pairing links and QR codes point there.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/")
    # Phone app sampling: keep a fix after this many seconds or this many metres moved,
    # and drop fixes whose accuracy radius is larger than this.
    PHONE_MIN_INTERVAL_S = _float("PHONE_MIN_INTERVAL_S", 5)
    PHONE_MIN_DISTANCE_M = _float("PHONE_MIN_DISTANCE_M", 10)
    PHONE_MAX_ACCURACY_M = _float("PHONE_MAX_ACCURACY_M", 500)
    # Phone app queue: batch size, ack timeout (above INGEST_ACK_TIMEOUT_S, so a slow
    # commit is answered before the phone gives up) and a cap of about 69 h at 5 s.
    PHONE_BATCH_SIZE = _int("PHONE_BATCH_SIZE", 100)
    PHONE_ACK_TIMEOUT_S = _float("PHONE_ACK_TIMEOUT_S", 15)
    PHONE_QUEUE_CAP = _int("PHONE_QUEUE_CAP", 50_000)
    # Lets end-to-end tests push a task to a phone over HTTP; never enable in production.
    PHONE_TEST_HOOKS = os.environ.get("PHONE_TEST_HOOKS", "0") == "1"

    # Live map: push position changes to /live viewers at most once per LIVE_INTERVAL
    # seconds; grey a person out after STALE_AFTER_S without a fix.
    LIVE_INTERVAL_S = _float("LIVE_INTERVAL", 1.0)
    STALE_AFTER_S = _float("STALE_AFTER_S", 300)
    # Command centre: seconds between two reads of the grid coverage by the map page.
    COVERAGE_REFRESH_S = _float("COVERAGE_REFRESH_S", 10.0)
    # Above this many people in scope the page narrows its live feed to the viewport.
    LIVE_VIEWPORT_MIN_PEOPLE = _int("LIVE_VIEWPORT_MIN_PEOPLE", 5000)
    # Basemap: an XYZ tile URL template ({z}/{x}/{y}) and its attribution; none by
    # default, since command centres often have no internet. MAP_GCJ02=1 shifts what is
    # drawn to GCJ-02 for Chinese commercial basemaps; stored data stays WGS-84.
    MAP_TILE_URL = os.environ.get("MAP_TILE_URL") or None
    MAP_TILE_ATTRIBUTION = os.environ.get("MAP_TILE_ATTRIBUTION", "")
    MAP_GCJ02 = os.environ.get("MAP_GCJ02", "0") == "1"
    # Several basemaps (docs/basemaps.md): a JSON list in BASEMAPS, or the JSON file
    # BASEMAPS_FILE; replaces MAP_TILE_URL when set. Every .pmtiles file in BASEMAP_DIR is
    # offered as an offline basemap. GEOCODER_URL (with {q}) lets the map search addresses.
    BASEMAPS = os.environ.get("BASEMAPS", "")
    BASEMAPS_FILE = os.environ.get("BASEMAPS_FILE", "")
    BASEMAP_DIR = Path(os.environ.get("BASEMAP_DIR", VAR_DIR / "basemaps"))
    GEOCODER_URL = os.environ.get("GEOCODER_URL", "")
    GEOCODER_CRS = os.environ.get("GEOCODER_CRS", "wgs84")
    # Staff pages: Chinese first; the browser's language decides unless the user chose.
    LANGUAGES = ("zh_CN", "en")
    BABEL_DEFAULT_LOCALE = "zh_CN"

    # Alert rules (tracker/zones/rules.py).
    ZONE_MIN_MARGIN_M = _float("ZONE_MIN_MARGIN_M", 15.0)
    ZONE_MAX_MARGIN_M = _float("ZONE_MAX_MARGIN_M", 100.0)
    LOW_BATTERY = _float("LOW_BATTERY", 0.15)
    SIGNAL_LOST_AFTER_S = _float("SIGNAL_LOST_AFTER_S", 300.0)
    SIGNAL_CHECK_INTERVAL_S = _float("SIGNAL_CHECK_INTERVAL_S", 10.0)
    # HTTP ingest remembers a device token's owner this long instead of asking the database
    # per request; a revoked device is still refused at once, by the group commit.
    DEVICE_CACHE_S = _float("DEVICE_CACHE_S", 60.0)
    # Open sockets of revoked devices and ended staff sessions are closed within this many
    # seconds (every event is checked at once regardless; tracker/cutoff.py).
    CUTOFF_INTERVAL_S = _float("CUTOFF_INTERVAL_S", 2.0)
    # Dispatch: how many nearest people to propose, and when a fix is too old to count.
    DISPATCH_CANDIDATES = _int("DISPATCH_CANDIDATES", 10)
    DISPATCH_MAX_AGE_S = _float("DISPATCH_MAX_AGE_S", 600.0)
    # Closed-loop incidents (docs/incidents.md): a task no phone acknowledged within this
    # raises a `task_undelivered` alert; a shift with no fix and no connection for this long
    # is closed (`silent`).
    TASK_DELIVERY_ALERT_S = _float("TASK_DELIVERY_ALERT_S", 120.0)
    SHIFT_IDLE_CLOSE_S = _float("SHIFT_IDLE_CLOSE_S", 1800.0)
    # History (docs/history.md): the outlier rules, what a stop is, the time zone of a
    # timeline's `date`, and the longest windows the history endpoints answer.
    HISTORY_MAX_ACCURACY_M = _float("HISTORY_MAX_ACCURACY_M", 100.0)
    HISTORY_MAX_SPEED_MPS = _float("HISTORY_MAX_SPEED_MPS", 50.0)
    HISTORY_STOP_RADIUS_M = _float("HISTORY_STOP_RADIUS_M", 50.0)
    HISTORY_STOP_MIN_S = _float("HISTORY_STOP_MIN_S", 300.0)
    HISTORY_TIME_ZONE = os.environ.get("HISTORY_TIME_ZONE", "Asia/Shanghai")
    # Patrol reports (docs/reports.md): a step between fixes longer than REPORTS_GAP_S is
    # lost signal; a stop longer than REPORTS_MAX_STAY_S is an overlong stay; coverage is
    # the grid's area within REPORTS_COVERAGE_RADIUS_M of the on-duty tracks; uncovered
    # periods of at least REPORTS_MIN_UNCOVERED_S are listed between the workday's hours;
    # a request covers at most REPORTS_MAX_DAYS days. `flask reports daily` writes into
    # REPORTS_DIR a file for each unit of the kinds in REPORTS_DAILY_KINDS.
    REPORTS_GAP_S = _float("REPORTS_GAP_S", 300.0)
    REPORTS_MAX_STAY_S = _float("REPORTS_MAX_STAY_S", 1800.0)
    REPORTS_COVERAGE_RADIUS_M = _float("REPORTS_COVERAGE_RADIUS_M", 25.0)
    REPORTS_MIN_UNCOVERED_S = _float("REPORTS_MIN_UNCOVERED_S", 600.0)
    REPORTS_WORKDAY_FROM_H = _float("REPORTS_WORKDAY_FROM_H", 8.0)
    REPORTS_WORKDAY_TO_H = _float("REPORTS_WORKDAY_TO_H", 18.0)
    REPORTS_MAX_DAYS = _int("REPORTS_MAX_DAYS", 31)
    REPORTS_DIR = Path(os.environ.get("REPORTS_DIR", VAR_DIR / "reports"))
    REPORTS_LANGUAGE = os.environ.get("REPORTS_LANGUAGE", "zh_CN")
    REPORTS_DAILY_KINDS = tuple(os.environ.get("REPORTS_DAILY_KINDS", "district,street").split(","))
    # Assessment rules (考核规则): a JSON list of rules per unit and/or role, over the
    # default (6 h on duty, 85 % coverage, 60 min off post, >= 95 % 10 points ...).
    ASSESSMENT_RULES = os.environ.get("ASSESSMENT_RULES", "")
    # Event reports: categories (JSON list of {"id", "zh", "en"}; empty = the defaults in
    # tracker/dispatch/categories.py), and the photos' folder and limits.
    INCIDENT_CATEGORIES = os.environ.get("INCIDENT_CATEGORIES", "")
    PHOTO_DIR = Path(os.environ.get("PHOTO_DIR", VAR_DIR / "photos"))
    PHOTO_MAX_BYTES = _int("PHOTO_MAX_BYTES", 5 * 1024 * 1024)
    PHOTO_MAX_PIXELS = _int("PHOTO_MAX_PIXELS", 40_000_000)
    REPORT_MAX_PHOTOS = 5

    def __init__(self) -> None:
        self.SECRET_KEY = _secret_key()
