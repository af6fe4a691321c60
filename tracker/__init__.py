"""Real-time geolocation tracker for city volunteers and patrols."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, cli, logformat, logredact, media, metrics, socket_json
from .api.admin import bp as admin_api_bp
from .api.assessment import bp as assessment_api_bp
from .api.audit import bp as audit_api_bp
from .api.basemaps import bp as basemaps_api_bp
from .api.history import bp as history_api_bp
from .api.incidents import bp as incidents_api_bp
from .api.privacy import bp as privacy_api_bp
from .api.reports import bp as reports_api_bp
from .api.routes import bp as api_bp
from .api.units import bp as units_api_bp
from .api.zones import bp as zones_api_bp
from .config import PROJECT_ROOT, Config, database_connect_args
from .cutoff import cutoff
from .dispatch.watcher import dispatch_watcher
from .extensions import babel, db, login, migrate, socketio
from .ingest.events import DeviceNamespace, register_positions_handler
from .ingest.http import IngestEndpoints
from .ingest.service import device_clients, token_lookups
from .ingest.writer import writer
from .live.events import LiveNamespace
from .live.feed import feed
from .privacy.policy import policies
from .web import security
from .web.i18n import select_locale
from .web.phone import bp as phone_bp
from .web.staff import bp as staff_bp
from .zones.watcher import watcher


def _tune_for_gevent() -> None:
    """Let psycopg2 yield to other greenlets while it waits on the database; spawn cheaply."""
    from gevent import monkey

    if monkey.is_module_patched("socket"):
        import gevent
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
        # Every Socket.IO event runs in a new greenlet; recording the spawning stack and
        # greenlet tree of each one (a debugging aid) cost 5 % of the server's CPU.
        gevent.config.track_greenlet_tree = False


def _message_queue(url: str | None) -> dict[str, Any]:
    """Return the Socket.IO arguments that share one feed between processes through Redis.

    Flask-SocketIO hands only redis:// and rediss:// URLs to python-socketio's Redis
    manager; a Sentinel URL (redis+sentinel://h1:p1,h2:p2/0/mymaster) needs the manager
    built here.
    """
    if url and url.startswith("redis+sentinel://"):
        from socketio import RedisManager

        return {"client_manager": RedisManager(url, channel="flask-socketio")}
    return {"message_queue": url}


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the Flask application."""
    _tune_for_gevent()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logredact.install()
    app = Flask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        static_url_path="/static",
    )
    app.json = socket_json.JSONProvider(app)
    app.config.from_object(Config())
    if test_config:
        app.config.update(test_config)
    logformat.install(app.config["LOG_FORMAT"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        "connect_args": database_connect_args(app.config["SQLALCHEMY_DATABASE_URI"]),
    }

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    login.init_app(app)
    auth.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    socketio.init_app(
        app,
        async_mode="gevent",
        json=socket_json,
        serializer=socket_json.TolerantPacket,
        max_http_buffer_size=app.config["SOCKETIO_MAX_HTTP_BUFFER_SIZE"],
        ping_interval=20,
        ping_timeout=20,
        **_message_queue(app.config["SOCKETIO_MESSAGE_QUEUE"]),
    )
    security.init_app(app)
    media.init_app(app)
    if hops := app.config["PROXY_HOPS"]:
        # Outermost, so that Engine.IO's same-origin check also sees the client's scheme
        # and host as nginx received them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # Outermost: the GPS apps' endpoints are answered before any other layer (Socket.IO,
    # headers, proxy, Flask), each of which costs CPU on every one-fix request; they set
    # their own security headers and read nothing a proxy rewrites.
    app.wsgi_app = IngestEndpoints(app, app.wsgi_app)  # type: ignore[method-assign]
    app.extensions["ingest_endpoints"] = app.wsgi_app  # for tracker.ingest.worker
    writer.init_app(app)
    token_lookups.init_app(app)
    device_clients.init_app(app)
    cutoff.init_app(app)
    watcher.init_app(app)
    dispatch_watcher.init_app(app)
    feed.init_app(app)
    policies.init_app(app)
    metrics.init_app(app)

    app.register_blueprint(api_bp)
    app.register_blueprint(zones_api_bp)
    app.register_blueprint(admin_api_bp)
    app.register_blueprint(units_api_bp)
    app.register_blueprint(incidents_api_bp)
    app.register_blueprint(reports_api_bp)
    app.register_blueprint(history_api_bp)
    app.register_blueprint(assessment_api_bp)
    app.register_blueprint(basemaps_api_bp)
    app.register_blueprint(audit_api_bp)
    app.register_blueprint(privacy_api_bp)
    app.register_blueprint(phone_bp)
    app.register_blueprint(staff_bp)
    device_namespace = DeviceNamespace("/device")
    socketio.on_namespace(device_namespace)
    register_positions_handler(app, device_namespace)
    socketio.on_namespace(LiveNamespace("/live"))
    cli.init_app(app)
    return app
