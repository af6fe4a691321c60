#!/usr/bin/env bash
# Install everything the tracker needs on Debian/Ubuntu, idempotently.
# Usage: scripts/setup.sh [run|test]
# Re-running reuses what is already there: apt is only called for what is missing,
# and the virtualenv is only reinstalled when setup.cfg changes.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-run}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

# --- system packages ---------------------------------------------------------
pg_version() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }
missing=()
PGV="$(pg_version)"
if [ -z "$PGV" ] || [ ! -x "/usr/lib/postgresql/$PGV/bin/postgres" ]; then
  missing+=(postgresql)
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3-venv); fi
command -v runuser >/dev/null || missing+=(util-linux)
# The map's front-end libraries come from npm (package.json); the pages are served from static/.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# The map's glyphs (scripts/glyphs.py) are made from DejaVu (Latin) and WenQuanYi Micro Hei
# (CJK punctuation); a browser on this machine (and the test browser) draws Chinese labels
# with WenQuanYi through MapLibre's localIdeographFontFamily.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
if [ "$MODE" = test ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  # The HTTP load generator of bench/http_ingest.py.
  command -v wrk >/dev/null || missing+=(wrk)
fi
# The multi-process stack (scripts/stack.sh sets WITH_STACK=1; tests/e2e/test_stack.py).
if [ "$MODE" = test ] || [ "${WITH_STACK:-0}" = 1 ]; then
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v redis-server >/dev/null || missing+=(redis-server)
fi
# gunicorn_h1c (gunicorn's C HTTP parser) is built from source: a C compiler and Python.h.
command -v gcc >/dev/null || missing+=(gcc)
python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
  2>/dev/null || missing+=(python3-dev)
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
PGV="$(pg_version)"
if [ ! -f "/usr/share/postgresql/$PGV/extension/postgis.control" ]; then
  apt_install "postgresql-$PGV-postgis-3"
fi

# --- python virtualenv ---------------------------------------------------------
STAMP=".venv/.installed-$MODE-$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
  log "installing the Python environment (.venv, $MODE)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  if [ "$MODE" = test ]; then
    .venv/bin/pip install -q -e '.[test]'
  else
    .venv/bin/pip install -q -e .
  fi
  rm -f .venv/.installed-"$MODE"-*
  touch "$STAMP"
fi

# --- front-end libraries and translations --------------------------------------
NPM_STAMP="node_modules/.installed-$(sha1sum package-lock.json | cut -c1-12)"
if [ ! -f "$NPM_STAMP" ]; then
  log "installing the front-end libraries (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  touch "$NPM_STAMP"
fi
mkdir -p static/vendor
cp node_modules/maplibre-gl/dist/maplibre-gl.js node_modules/maplibre-gl/dist/maplibre-gl.css \
  node_modules/socket.io-client/dist/socket.io.min.js static/vendor/
# Grid drawing on /admin/units: the UMD builds, classic scripts like maplibre (the adapter's
# ES module imports the bare name "terra-draw", which needs an import map the CSP forbids).
cp node_modules/terra-draw/dist/terra-draw.umd.js \
  node_modules/terra-draw-maplibre-gl-adapter/dist/terra-draw-maplibre-gl-adapter.umd.js \
  static/vendor/
# The speed and accuracy chart of a person's day (/people/<id>/day): ECharts' ES module build,
# which needs no eval (its only `new Function` parses a map's GeoJSON string, never used here).
cp node_modules/echarts/dist/echarts.esm.min.js static/vendor/
# Basemaps (docs/basemaps.md): gcoord's ES module (WGS-84/GCJ-02/BD-09), the pmtiles reader
# (its IIFE build: the ES build imports the bare name "fflate"), the Protomaps style (an ES
# module without imports), and the Latin glyphs made from local fonts.
cp node_modules/gcoord/dist/gcoord.esm-browser.prod.js static/vendor/gcoord.js
cp node_modules/pmtiles/dist/pmtiles.js static/vendor/pmtiles.js
cp node_modules/@protomaps/basemaps/dist/esm/index.js static/vendor/protomaps-basemaps.js
GLYPH_STAMP="static/vendor/glyphs/.made-$(sha1sum scripts/glyphs.py | cut -c1-12)"
if [ ! -f "$GLYPH_STAMP" ]; then
  log "making the map's glyphs (scripts/glyphs.py)"
  rm -rf static/vendor/glyphs
  .venv/bin/python scripts/glyphs.py static/vendor/glyphs
  touch "$GLYPH_STAMP"
fi
.venv/bin/pybabel -q compile -d tracker/translations

# --- database ----------------------------------------------------------------
if [ -z "${DATABASE_URL:-}" ]; then
  scripts/pg.sh start
fi
