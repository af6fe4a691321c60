"""The reference for bench/http_ingest.py: a Flask view that only returns a constant JSON.

Served by the same gunicorn settings as the tracker (`deploy/gunicorn.conf.py`), so the
ratio ingest / reference shows what the tracker's own work costs over Flask's.
"""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def constant():
    """Answer a constant JSON, as cheaply as a Flask view can."""
    return jsonify(ok=True)
