"""Nothing lost, nothing twice: a phone keeps sending through server crashes and outages."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import ServerProcess, create_database, drop_database
from tests.e2e.phones import ResendingPhone, TestPhone, count, now_ms
from tracker import create_app, store
from tracker.auth import hash_token, new_device_token
from tracker.extensions import db


@pytest.fixture()
def own_database(base_url):
    """Create a migrated database used by one test only; return (url, name)."""
    from flask_migrate import upgrade

    name = f"tracker_dur_{uuid.uuid4().hex[:8]}"
    url = create_database(base_url, name)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade()
        person = store.people.add_person(db.session, "durable", "patrol", None, None)
        token = new_device_token()
        store.devices.add_device(db.session, person.id, None, hash_token(token))
        person_id = person.id
        db.session.commit()
        db.engine.dispose()
    yield url, name, person_id, token
    drop_database(base_url, name)


def test_server_killed_and_restarted_while_phone_streams(own_database):
    url, _, person_id, token = own_database
    server = ServerProcess(url)
    server.start()
    phone = ResendingPhone(server.url, token)
    thread = threading.Thread(target=phone.run)
    thread.start()
    try:
        time.sleep(1.5)
        server.kill()  # SIGKILL: no graceful shutdown, acks in flight are lost
        time.sleep(1.0)
        server.start()
        time.sleep(1.5)
        server.kill()
        server.start()
        time.sleep(1.0)
    finally:
        phone.stop.set()
        thread.join(timeout=60)
        server.stop()
    assert phone.unacked == []
    assert phone.failures > 0, "the crash was not noticed: the test proved nothing"
    assert count(url, person_id) == phone.generated
    assert phone.stored <= phone.generated <= phone.stored + phone.duplicates


def test_database_outage_answers_retry_and_nothing_is_lost(own_database, base_url):
    url, name, person_id, token = own_database
    server = ServerProcess(url)
    server.start()
    admin = create_engine(make_url(base_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        phone = TestPhone(server.url, token).connect()
        t = now_ms()
        assert phone.send([{"ts": t - 5000, "lat": 39.9, "lon": 116.4}])["stored"] == 1
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                {"d": name},
            )
        batch = [{"ts": t - 4000 + i, "lat": 39.9, "lon": 116.4} for i in range(10)]
        ack = phone.send(batch)
        assert ack["ok"] is False and ack["retry"] is True
        assert ack["error"].startswith("store:")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        assert phone.send(batch) == {"ok": True, "stored": 10, "duplicates": 0, "rejected": []}
        phone.close()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        admin.dispose()
        server.stop()
    assert count(url, person_id) == 11
