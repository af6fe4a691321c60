"""Gunicorn settings for one tracker process: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`."""

import os

# One gevent worker per process: Socket.IO keeps per-connection state in the process, so
# scale out with more processes behind nginx (docs/scaling.md), not more workers.
worker_class = "gevent"
workers = 1
# The gevent worker's default of 1,000 concurrent connections is far below what one
# process can hold open as idle websockets.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", 20000))
bind = os.environ.get("BIND", "127.0.0.1:5000")
timeout = 60
graceful_timeout = 10
accesslog = None
# Several processes run side by side (tests, scale-out); none needs gunicornc.
control_socket_disable = True


def post_worker_init(worker):
    """Start the alert rules' background checks in each worker, without waiting for a fix."""
    watcher = worker.wsgi.extensions.get("zone_watcher")
    if watcher is not None:
        watcher.start()
