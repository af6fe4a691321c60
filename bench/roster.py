"""Measure a roster import: an office's Excel file of N people, previewed then imported.

Usage (from the repository root):

    .venv/bin/python bench/roster.py [--people 5000] [--runs 3] [--keep-db]

It creates a throwaway database, a street with 20 grids and a street-scoped admin, writes
an XLSX roster in code (Chinese headers, names, roles and grid names, as offices keep
them), and times, through the real Flask app and PostGIS: the preview (nothing stored),
the first import (all people created), and a re-import of the same file (everyone matched
by phone, unchanged). Prints a Markdown table with the spread over the runs.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import time

import openpyxl
from _common import (
    ThrowawayDatabase,
    base_database_url,
    command_line,
    machine_note,
    markdown_table,
)

from tracker import create_app, store
from tracker.auth import hash_password
from tracker.extensions import db

ROLES = ("志愿者", "街巷长", "网格员", "巡逻队员")


def roster_xlsx(people: int, grids: list[str], run: int) -> bytes:
    """Return an XLSX roster of `people` rows with unique phone numbers for this run."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["姓名", "手机号", "角色", "所属单位", "巡查网格"])
    for n in range(people):
        grid = grids[n % len(grids)]
        sheet.append([f"志愿者{n:05d}", f"13{run}{n:08d}", ROLES[n % 4], grid, grid])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def timed(client, path: str, raw: bytes) -> tuple[float, dict]:
    """POST a roster as the page does; return seconds and the answer."""
    started = time.perf_counter()
    answer = client.post(path, json={"file_base64": base64.b64encode(raw).decode()})
    seconds = time.perf_counter() - started
    assert answer.status_code == 200, answer.get_json()
    return seconds, answer.get_json()


def main() -> None:
    """Build the data, time the three steps, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    database = ThrowawayDatabase(base_database_url(), "bench_roster", keep=args.keep_db)
    database.create()
    try:
        database.migrate()
        app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "TESTING": True})
        with app.app_context():
            street = store.people.add_unit(db.session, "外滩街道", "street", None, None)
            grids = [
                store.people.add_unit(db.session, f"第{g}网格", "grid", street.id, None).name
                for g in range(1, 21)
            ]
            store.accounts.add_user(
                db.session, "bench", hash_password("bench-password"), "admin", street.id
            )
            db.session.commit()
        client = app.test_client()
        login = {"username": "bench", "password": "bench-password"}
        assert client.post("/api/v1/session", json=login).status_code == 200
        steps: dict[str, list[float]] = {"preview": [], "import (create)": [], "re-import": []}
        for run in range(args.runs):
            raw = roster_xlsx(args.people, grids, run)
            seconds, answer = timed(client, "/api/v1/roster/preview", raw)
            assert answer["ok"], answer["rows"][:3]
            steps["preview"].append(seconds)
            seconds, answer = timed(client, "/api/v1/roster/import", raw)
            assert answer["created"] == args.people
            steps["import (create)"].append(seconds)
            seconds, answer = timed(client, "/api/v1/roster/import", raw)
            assert answer["unchanged"] == args.people
            steps["re-import"].append(seconds)
        rows = [
            [
                step,
                f"{statistics.median(times):.2f} s",
                f"{min(times):.2f}–{max(times):.2f} s",
                f"{args.people / statistics.median(times):,.0f} rows/s",
            ]
            for step, times in steps.items()
        ]
        print(machine_note())
        print(markdown_table(["step", "median", "range", "rate"], rows))
        print(f"command: {command_line()}")
    finally:
        database.drop()


if __name__ == "__main__":
    main()
