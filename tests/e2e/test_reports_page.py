"""The patrol reports page (/reports) in zh-CN in a real browser against the real server."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.conftest import ROOT
from tests.e2e.chromium import wait_until
from tracker import store
from tracker.extensions import db
from tracker.models import Shift

ZONE = ZoneInfo("Asia/Shanghai")  # HISTORY_TIME_ZONE's default
LAT0, LON0 = 39.9280, 116.4105
ARTIFACTS = ROOT / "var" / "artifacts"


def seed(app, make_unit, make_phone):
    """Store a street with one grid and a grid worker who walked through it yesterday."""
    street = make_unit(name="景山街道", kind="street")
    grid = make_unit(name="第3网格", kind="grid", parent_id=street)
    worker = make_phone(role="grid_worker", unit_id=grid, name="张伟")
    day = datetime.now(ZONE).date() - timedelta(days=1)
    start = datetime.combine(day, time(9, 0), ZONE)
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE units SET boundary = ST_Multi(ST_MakeEnvelope(:w, :s, :e, :n, 4326))"
                " WHERE id = :id"
            ),
            {"w": LON0, "s": LAT0, "e": LON0 + 0.004, "n": LAT0 + 0.003, "id": grid},
        )
        store.people.assign_patrol_unit(db.session, worker.person_id, grid)
        db.session.add(
            Shift(person_id=worker.person_id, started_at=start, ended_at=start + timedelta(hours=2))
        )
        store.positions.ensure_partition(db.session, start.astimezone(ZONE).date())
        store.positions.ensure_partition(db.session, (start - timedelta(hours=9)).date())
        # Up and down the grid's west half for an hour, a fix every 10 s.
        rows = []
        for i in range(360):
            leg = (i // 60) % 2
            north = (i % 60) / 60 * 0.0028
            lat = LAT0 + 0.0001 + (north if leg == 0 else 0.0028 - north)
            lon = LON0 + 0.0004 + (i // 60) * 0.0003
            ts = start + timedelta(seconds=10 * i)
            rows.append(
                store.positions.PositionRow(worker.person_id, worker.device_id, ts, lat, lon, 6.0)
            )
        store.positions.insert_positions(db.session, rows)
        db.session.commit()
    return street, grid, worker, day


def test_reports_page_in_chinese_shows_sorts_shades_coverage_and_drills_down(
    app, server, browser, make_unit, make_phone, make_user
):
    street, grid, worker, day = seed(app, make_unit, make_phone)
    username, password = make_user("viewer", street)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")
    query = f"unit_id={street}&from={day}&to={day}&report=grid-days"
    page.goto(f"{server.url}/reports?{query}")
    wait_until(page, "document.body.dataset.reportState === 'ready'")

    assert page.locator("html").get_attribute("lang") == "zh-CN"
    headers = page.locator("#reports-table thead th").all_inner_texts()
    assert "覆盖率（%）" in headers and "网格" in headers
    cells = page.locator("#reports-table tbody tr").first.locator("td").all_inner_texts()
    assert cells[1] == "第3网格"
    coverage_pct = float(cells[2])
    assert 20 < coverage_pct < 100
    assert page.locator("#reports-chart").get_attribute("data-bars") == "1"
    assert page.locator("#reports-unit").input_value() == str(street)
    xlsx = page.locator("#reports-xlsx").get_attribute("href")
    assert xlsx.startswith("/api/v1/reports/grid-days.xlsx?") and f"unit_id={street}" in xlsx

    page.get_by_role("button", name="覆盖图").click()
    wait_until(page, "document.getElementById('reports-coverage').dataset.shaded === 'yes'")
    shown = float(page.locator("#reports-coverage").get_attribute("data-coverage-pct"))
    assert abs(shown - coverage_pct) < 0.1
    assert "第3网格" in page.locator("#reports-coverage-title").inner_text()
    # Walked from 09:00 to the last fix at 09:59:50 only: the rest of the working hours
    # (08:00-18:00) had nobody inside.
    assert page.locator("#reports-uncovered").inner_text() == (
        "工作时段内无人在岗：08:00–09:00, 09:59–18:00"
    )

    page.select_option("#reports-kind", "person-days")
    page.click("#reports-load")
    wait_until(
        page,
        "document.body.dataset.reportState === 'ready' && location.search.includes('person-days')",
    )
    page.get_by_role("button", name="在岗时长（小时）").click()
    assert page.locator("th[data-key=duty]").get_attribute("aria-sort") == "ascending"
    row = page.locator("#reports-table tbody tr", has_text="张伟")
    assert row.locator("td").nth(4).inner_text() == "2.00"
    day_link = row.get_by_role("link", name="当天轨迹")
    assert day_link.get_attribute("href") == f"/people/{worker.person_id}/day?date={day}"
    replay = row.get_by_role("link", name="回放").get_attribute("href")
    assert replay.startswith("/replay?") and f"people={worker.person_id}" in replay

    page.select_option("#reports-kind", "grid-days")
    page.click("#reports-load")
    wait_until(
        page,
        "document.body.dataset.reportState === 'ready' && location.search.includes('grid-days')",
    )
    page.get_by_role("button", name="覆盖图").click()
    wait_until(page, "document.getElementById('reports-coverage').dataset.shaded === 'yes'")
    page.wait_for_timeout(500)  # let MapLibre paint the shaded area before the picture
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports-page-zh-CN.png"), full_page=True)
    page.emulate_media(media="print")
    assert not page.locator("#reports-form").is_visible()
    assert errors == []
    context.close()
