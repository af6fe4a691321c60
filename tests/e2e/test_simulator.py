"""The simulator drives phones through the real /device protocol."""

from __future__ import annotations

import os
import subprocess
import sys

import gpxpy
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT


def simulate(server, database_url, *args: str) -> subprocess.CompletedProcess:
    """Run `flask simulate` against the test server and database."""
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_APP": "wsgi"}
    return subprocess.run(
        [sys.executable, "-m", "flask", "simulate", "--url", server.url, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sim_positions(database_url, names):
    """Return (name, lat, lon) of the stored positions of simulated people, in time order."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.name, ST_Y(geom), ST_X(geom) FROM positions JOIN people p "
                "ON p.id = positions.person_id WHERE p.name = ANY(:n) ORDER BY p.name, ts"
            ),
            {"n": names},
        ).all()
    engine.dispose()
    return rows


def test_walks_stay_in_the_area_and_every_acknowledged_fix_is_stored(server, database_url):
    area = (121.40, 31.20, 121.41, 31.21)
    result = simulate(
        server,
        database_url,
        "--people",
        "4",
        "--interval",
        "0.5",
        "--duration",
        "4",
        "--area",
        ",".join(map(str, area)),
        "--seed",
        "7",
    )
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    stored = int(summary.split("stored ")[1].split(" ")[0])
    names = [f"模拟 Sim {n:04d}" for n in range(1, 5)]
    rows = sim_positions(database_url, names)
    assert stored >= 4 * 4  # at least two fixes a second per phone for most of 4 s
    assert "rejected 0" in summary and "waiting 0" in summary
    in_area = [r for r in rows if area[1] <= r[1] <= area[3] and area[0] <= r[2] <= area[2]]
    assert len(in_area) >= stored  # earlier runs may have walked elsewhere
    assert {r.name for r in rows} == set(names)


def test_replays_a_recorded_trace_shifted_into_the_area(server, database_url, gpx_dir):
    trace = gpx_dir / "around-visnjan-with-car.gpx"
    with open(trace, encoding="utf-8") as f:
        points = [
            (p.latitude, p.longitude)
            for t in gpxpy.parse(f).tracks
            for s in t.segments
            for p in s.points
        ]
    result = simulate(
        server,
        database_url,
        "--people",
        "1",
        "--interval",
        "0.2",
        "--duration",
        "3",
        "--area",
        "120.0,30.0,120.001,30.001",
        "--trace",
        str(trace),
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr
    rows = [r for r in sim_positions(database_url, ["模拟 Sim 0001"]) if 30.0 - 0.1 < r[1] < 30.2]
    assert len(rows) >= 5
    first_lat, first_lon = rows[0][1], rows[0][2]
    # Same shape as the recording: each stored fix is the trace's point moved by one offset.
    for (_, lat, lon), (t_lat, t_lon) in zip(rows, points, strict=False):
        assert lat - first_lat == pytest.approx(t_lat - points[0][0], abs=1e-6)
        assert lon - first_lon == pytest.approx(t_lon - points[0][1], abs=1e-6)
