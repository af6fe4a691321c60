"""Gunicorn settings for one tracker process: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`."""

import gc
import os

# One gevent worker per process: Socket.IO keeps per-connection state in the process, so
# scale out with more processes behind nginx (docs/scaling.md), not more workers.
# tracker.ingest.worker is gunicorn's gevent worker with a short path for the GPS apps'
# one-fix requests (answered in one write, without building a WSGI environ).
worker_class = "tracker.ingest.worker.IngestWorker"
workers = 1
# The gevent worker's default of 1,000 concurrent connections is far below what one
# process can hold open as idle websockets.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", 20000))
bind = os.environ.get("BIND", "127.0.0.1:5000")
# gunicorn's C parser (the gunicorn_h1c package, installed with the tracker): parsing a
# request in Python cost about 15 % of a one-fix request's CPU. "fast" rather than "auto"
# so that a missing build stops the server instead of quietly serving at half the speed.
http_parser = "fast"
timeout = 60
# GPS apps send one fix a request, every few seconds, over a kept-alive connection; with
# gunicorn's default of 2 s each request met a closed connection and opened a new one
# (a TCP handshake, and for the app a failed write and a retry, every time).
keepalive = int(os.environ.get("KEEPALIVE_S", 30))
# On SIGTERM the worker waits this long for its connections; idle keep-alive and
# websocket connections hold it to the end. The test suite sets 3 s for its servers.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT_S", 10))
accesslog = None
# Several processes run side by side (tests, scale-out); none needs gunicornc.
control_socket_disable = True


# Python's cyclic garbage collector stops the event loop while it runs. With the default
# first threshold (700 net new objects) it ran a full collection of every live object about
# every 1.7 s at 10,000 positions/s, each stopping all 1,000 phones for about 200 ms and in
# all costing 13 % of the process's CPU. Batches in flight survive the young collections
# and are promoted, which is what kept triggering the full ones. The ingest path makes
# almost no reference cycles (checked with gc.DEBUG_SAVEALL: the cyclic garbage comes from
# connection handshakes), so collecting the young generation every 100,000 net new objects
# instead loses nothing and keeps the loop responsive. The same idea as Instagram's
# "gc.freeze()": the objects of the loaded application never become garbage, so they are
# moved out of the collector's sight.
GC_THRESHOLDS = (100_000, 10, 10)


def post_worker_init(worker):
    """Tune the collector; start the alert rules' background checks without waiting for a fix."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    watcher = worker.wsgi.extensions.get("zone_watcher")
    if watcher is not None:
        watcher.start()
