#!/usr/bin/env bash
# Set everything up and serve the tracker with a moving demo on http://127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
export FLASK_APP=wsgi
.venv/bin/flask db upgrade
.venv/bin/flask partitions ensure
.venv/bin/flask seed-demo
BIND="${BIND:-127.0.0.1:5000}"
export BIND
.venv/bin/gunicorn -c deploy/gunicorn.conf.py wsgi:app &
SERVER=$!
SIM=""
trap 'kill $SERVER $SIM 2>/dev/null; wait 2>/dev/null' EXIT INT TERM
.venv/bin/python - "$BIND" <<'PY'
import sys, time, urllib.error, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(f"http://{sys.argv[1]}/api/v1/session", timeout=1)
    except urllib.error.HTTPError:
        break  # 401: the server answers
    except OSError:
        time.sleep(0.2)
PY
if [ "${DEMO_SIMULATION:-1}" = 1 ]; then
  # A dozen simulated volunteers walk the demo grids so the map moves (var/simulator.log).
  .venv/bin/flask simulate --people 12 --interval 3 --url "http://$BIND" > var/simulator.log 2>&1 &
  SIM=$!
fi
echo "==> serving on http://$BIND  (Ctrl-C stops)"
wait $SERVER
