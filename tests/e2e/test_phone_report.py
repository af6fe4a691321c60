"""Event reports (事件上报) from the phone app in real Chromium against the real server."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import Phone
from tests.e2e.test_phone import START, open_app, phone_contexts, shot, wait_for
from tests.e2e.test_phone_tasks import staff
from tracker.extensions import db
from tracker.models import Incident, IncidentPhoto

# Reads the queued report's photos back from IndexedDB: their type and decoded size.
QUEUED_PHOTOS = """
async () => {
  const db = await new Promise((resolve, reject) => {
    const req = indexedDB.open("tracker-phone");
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const reports = await new Promise((resolve, reject) => {
    const req = db.transaction("reports").objectStore("reports").getAll();
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  db.close();
  const photos = [];
  for (const photo of reports[0].photos) {
    const bitmap = await createImageBitmap(photo);
    photos.push([photo.type, bitmap.width, bitmap.height]);
  }
  return {key: reports[0].key, photos};
}
"""


@pytest.fixture()
def context_for(browser) -> Iterator[Callable[..., Any]]:
    """Return a function opening a phone-sized browser context with location allowed."""
    with phone_contexts(browser) as make:
        yield make


def picture(width: int, height: int, kind: str) -> dict[str, Any]:
    """Return a photo the phone's file picker hands over: a gradient in JPEG or PNG."""
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    down = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (across, down, Image.new("L", (width, height), 90)))
    out = io.BytesIO()
    image.save(out, format=kind)
    mime = {"JPEG": "image/jpeg", "PNG": "image/png"}[kind]
    name = f"IMG_{width}x{height}.{kind.lower()}"
    return {"name": name, "mimeType": mime, "buffer": out.getvalue()}


def reported(app, phone: Phone) -> list[tuple[Incident, list[IncidentPhoto], float, float]]:
    """Return the incidents the phone's person reported, with photos and (lat, lon)."""
    with app.app_context():
        rows = db.session.execute(
            select(Incident, func.ST_Y(Incident.geom), func.ST_X(Incident.geom)).where(
                Incident.reported_by == phone.person_id
            )
        ).all()
        result = []
        for incident, lat, lon in rows:
            photos = (
                db.session.execute(
                    select(IncidentPhoto)
                    .where(IncidentPhoto.incident_id == incident.id)
                    .order_by(IncidentPhoto.id)
                )
                .scalars()
                .all()
            )
            db.session.expunge_all()
            result.append((incident, list(photos), lat, lon))
        db.session.remove()
    return result


def open_report_form(page: Any, with_position: str) -> None:
    """Open the report form and wait until it knows the phone's position."""
    page.click("#report-open")
    wait_for(page, "!document.getElementById('report-view').hidden")
    wait_for(page, f"document.getElementById('report-position').textContent === '{with_position}'")


def test_a_report_made_offline_with_two_photos_uploads_once_and_dispatchers_see_it(
    app, make_phone, make_user, server, context_for
):
    phone = make_phone(name="张伟")
    context = context_for(server.url, locale="zh-CN")
    page = open_app(context, server, phone)
    wait_for(page, "window.trackerPhone.synced >= 1")

    context.set_offline(True)
    wait_for(page, "window.trackerPhone.connection !== 'connected'")
    open_report_form(page, "将附上本机最近的位置")
    categories = page.eval_on_selector_all("#report-category option", "os => os.map(o => o.text)")
    assert categories == ["环境卫生", "占道经营", "安全隐患", "设施损坏", "其他"]
    page.select_option("#report-category", "sanitation")

    # Nothing is queued without a note, nor without a photo.
    page.click("#report-submit")
    assert page.inner_text("#report-error") == "请填写情况说明"
    page.fill("#report-note", "路口垃圾堆放 rubbish at the corner")
    page.click("#report-submit")
    assert page.inner_text("#report-error") == "请拍摄或选择 1–5 张照片"
    assert page.evaluate("window.trackerPhone.reportsQueued") == 0

    # A landscape camera photo and a portrait screenshot, each larger than 1,600 px.
    page.set_input_files("#report-photos", files=[picture(3200, 2400, "JPEG")])
    page.set_input_files("#report-photos", files=[picture(1000, 2000, "PNG")])
    wait_for(page, "document.querySelectorAll('#report-previews img').length === 2")
    shot(page, "15-report-form-zh")
    page.click("#report-submit")
    wait_for(page, "window.trackerPhone.reportsQueued === 1")
    wait_for(page, "!document.getElementById('paired').hidden")
    assert page.inner_text("#reports-queued") == "1 份待上传"
    queued = page.evaluate(QUEUED_PHOTOS)
    assert queued["photos"] == [["image/jpeg", 1600, 1200], ["image/jpeg", 800, 1600]]
    shot(page, "16-report-queued-zh")

    # Still queued after an offline reload; nothing reached the server.
    page.reload()
    wait_for(page, "window.trackerPhone && window.trackerPhone.ready === true")
    wait_for(page, "window.trackerPhone.reportsQueued === 1")
    assert page.evaluate("window.trackerPhone.reportUploads") == 0
    assert reported(app, phone) == []

    context.set_offline(False)
    wait_for(page, "window.trackerPhone.reportsQueued === 0", timeout_s=30)
    time.sleep(1)  # a second upload would come now
    assert page.evaluate("window.trackerPhone.reportUploads") == 1
    ((incident, photos, lat, lon),) = reported(app, phone)
    assert incident.report_key == queued["key"]
    assert incident.category == "sanitation"
    assert incident.description == "路口垃圾堆放 rubbish at the corner"
    assert (lat, lon) == pytest.approx(START, abs=1e-7)
    assert [(p.content_type, p.width, p.height) for p in photos] == [
        ("image/jpeg", 1600, 1200),
        ("image/jpeg", 800, 1600),
    ]

    http = staff(server, make_user)
    detail = http.get(f"{server.url}/api/v1/incidents/{incident.id}", timeout=10)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["reported_by"] == {"id": phone.person_id, "name": "张伟"}
    assert [(p["width"], p["height"]) for p in body["photos"]] == [(1600, 1200), (800, 1600)]
    first = http.get(f"{server.url}{body['photos'][0]['url']}", timeout=10)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(first.content)).size == (1600, 1200)

    # The reporter follows the report: sending someone tells the phone.
    row = f"#reports [data-key='{queued['key']}'] .report-status"
    wait_for(page, f'document.querySelector("{row}").textContent === "待分派"')
    helper = make_phone()
    http.post(
        f"{server.url}/api/v1/incidents/{incident.id}/assign",
        json={"person_ids": [helper.person_id]},
        timeout=10,
    ).raise_for_status()
    wait_for(page, f'document.querySelector("{row}").textContent === "已派人"', timeout_s=10)
    shot(page, "17-report-followed-zh")


def test_a_report_the_server_refuses_is_dropped_and_the_reason_shown(
    app, make_phone, server, context_for
):
    phone = make_phone()
    context = context_for(server.url)
    page = open_app(context, server, phone)
    wait_for(page, "window.trackerPhone.synced >= 1")
    open_report_form(page, "Your last position is sent with it")
    # A category this server does not know, as an outdated app might still offer.
    page.eval_on_selector(
        "#report-category", "s => { s.append(new Option('Old', 'retired')); s.value = 'retired'; }"
    )
    page.fill("#report-note", "Broken bench")
    page.set_input_files("#report-photos", files=[picture(640, 480, "JPEG")])
    page.click("#report-submit")
    wait_for(page, "window.trackerPhone.reportUploads === 1")
    wait_for(page, "window.trackerPhone.reportsQueued === 0")
    refusal = page.inner_text("#report-refused")
    assert "category" in refusal and "Broken bench" in refusal, refusal
    assert reported(app, phone) == []
    shot(page, "18-report-refused")
