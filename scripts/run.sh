#!/usr/bin/env bash
# Set everything up and serve the tracker with a demo on http://127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask partitions ensure
.venv/bin/flask seed-demo
echo "==> serving on http://${BIND:-127.0.0.1:5000}  (Ctrl-C stops)"
exec .venv/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app
