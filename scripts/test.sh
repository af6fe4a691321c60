#!/usr/bin/env bash
# Set everything up and run the whole test suite against a real PostGIS.
# Tests create throwaway databases on the embedded cluster (or on DATABASE_URL's server)
# and drop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/python tests/data/fetch_traces.py
echo "==> ruff"
.venv/bin/ruff check tracker tests bench migrations wsgi.py
.venv/bin/ruff format --check tracker tests bench migrations wsgi.py
echo "==> pytest"
exec .venv/bin/python -m pytest "$@"
