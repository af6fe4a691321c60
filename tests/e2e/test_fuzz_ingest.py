"""Property-based fuzzing of every ingest path and the staff JSON endpoints.

Against the real server process and PostGIS, with a fixed seed and a bounded number of
examples per path. While the store is healthy, no input may be answered with a 5xx or a
"retry" (a GPS app or our phone would resend it forever and jam its queue), and the rows
a request adds must equal what its acknowledgement says it stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from tests.conftest import ServerProcess
from tests.e2e.phones import TestPhone

EXAMPLES = 60
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # a fixed seed: the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ----------------------------------------------------------------------

EDGE_FLOATS = st.sampled_from(
    [0.0, -0.0, 1e-46, 5e-324, 3.4028234663852886e38, 3.5e38, 1e39, 1e308, -1e308, -1.0]
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    EDGE_FLOATS,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.integers(min_value=-200, max_value=400),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=30))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


@st.composite
def times(draw) -> Any:
    """A fix time: mostly recent and storable, sometimes extreme or malformed."""
    kind = draw(st.integers(0, 9))
    if kind <= 4:
        return _now_ms() - draw(st.integers(0, 3_600_000))
    if kind == 5:
        ts = datetime.now(UTC) - timedelta(seconds=draw(st.integers(0, 3600)))
        return ts.isoformat()
    return draw(
        st.one_of(
            st.sampled_from(
                [
                    "9999-12-31T23:59:59-23:59",
                    "0001-01-01T00:00:00+23:59",
                    "2999-01-01T00:00:00Z",
                    "2026-13-01T00:00:00Z",
                    "1e308",
                    10**30,
                    -(10**20),
                    253402300800000,
                ]
            ),
            SCALARS,
        )
    )


@st.composite
def fix_items(draw) -> Any:
    """A /device position item with adversarial values, or any JSON value."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    item = {
        "ts": draw(times()),
        "lat": draw(st.one_of(st.floats(-90, 90), NUMBERS, SCALARS)),
        "lon": draw(st.one_of(st.floats(-180, 180), NUMBERS, SCALARS)),
    }
    for field in ("accuracy", "altitude", "speed", "heading", "battery"):
        if draw(st.booleans()):
            item[field] = draw(st.one_of(NUMBERS, SCALARS))
    return item


# A `positions` payload: mostly a list of adversarial items, sometimes any JSON value.
POSITIONS_PAYLOADS = st.one_of(
    st.lists(fix_items(), min_size=1, max_size=12).map(lambda xs: {"positions": xs}),
    JSON,
)

PARAM_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["1_0", " 5", "nan", "inf", "-1", "1e400", "0x10", "39.9", "116.4", ""]),
    NUMBERS.map(str),
)


@st.composite
def osmand_params(draw) -> dict[str, str]:
    """Query or form parameters of the OsmAnd protocol, mostly plausible."""
    params = {
        "lat": draw(st.one_of(st.floats(-90, 90).map(str), PARAM_TEXT)),
        "lon": draw(st.one_of(st.floats(-180, 180).map(str), PARAM_TEXT)),
        "timestamp": draw(st.one_of(times().map(str), PARAM_TEXT)),
    }
    for name in ("speed", "bearing", "altitude", "accuracy", "batt", "hdop", "spd", "alarm"):
        if draw(st.integers(0, 3)) == 0:
            params[name] = draw(PARAM_TEXT)
    return params


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server(database_url):
    """Run a server of its own: the login fuzz must not throttle other tests' logins."""
    proc = ServerProcess(
        database_url,
        {"LOGIN_LIMIT_ACCOUNT": "100000 per minute", "LOGIN_LIMIT_ADDRESS": "100000 per minute"},
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def engine(database_url):
    """Return an engine on the test database, to count what the server stored."""
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


def rows(engine, person_id: int) -> int:
    """Return how many positions a person has."""
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM positions WHERE person_id = :p"), {"p": person_id}
        ).scalar_one()


def check_http(response: requests.Response) -> Any:
    """Assert the answer is not a server error or a retry; return its JSON, if any."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        assert body.get("retry") is not True, body
    return body


def dumps(value: Any) -> str:
    """Encode like a careless client: NaN and Infinity as bare literals."""
    return json.dumps(value, allow_nan=True)


# --- the socket ----------------------------------------------------------------------


def test_fuzz_socket_positions(fuzz_server, make_phone, engine):
    p = make_phone()
    phone = TestPhone(fuzz_server.url, p.token).connect()

    @FUZZ
    @given(POSITIONS_PAYLOADS)
    def run(payload):
        before = rows(engine, p.person_id)
        ack = phone.call("positions", payload)
        assert isinstance(ack, dict) and ack.get("retry") is not True, ack
        added = rows(engine, p.person_id) - before
        assert added == (ack["stored"] if ack["ok"] else 0), ack

    try:
        run()
    finally:
        phone.close()


@pytest.mark.parametrize("event", ["duty", "sos", "task_update"])
def test_fuzz_socket_events(fuzz_server, make_phone, event):
    p = make_phone()
    phone = TestPhone(fuzz_server.url, p.token).connect()

    @FUZZ
    @given(
        st.one_of(
            JSON,
            st.fixed_dictionaries(
                {"on": SCALARS, "ts": times(), "lat": NUMBERS, "lon": NUMBERS, "note": JSON}
            ),
            st.fixed_dictionaries({"id": NUMBERS, "status": SCALARS}),
        )
    )
    def run(payload):
        ack = phone.call(event, payload)
        assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
        assert ack.get("retry") is not True, ack
        if not ack["ok"]:
            assert isinstance(ack["error"], str) and ": " in ack["error"], ack

    try:
        run()
    finally:
        phone.close()


# --- HTTP ingest -----------------------------------------------------------------------


def test_fuzz_http_positions(fuzz_server, make_phone, engine):
    p = make_phone()
    headers = {"Authorization": f"Bearer {p.token}", "Content-Type": "application/json"}

    @FUZZ
    @given(POSITIONS_PAYLOADS)
    def run(payload):
        before = rows(engine, p.person_id)
        response = requests.post(
            f"{fuzz_server.url}/api/v1/positions", data=dumps(payload), headers=headers, timeout=15
        )
        body = check_http(response)
        added = rows(engine, p.person_id) - before
        assert added == (body["stored"] if response.status_code == 200 else 0), body

    run()


@pytest.mark.parametrize("how", ["get", "form", "json"])
def test_fuzz_osmand(fuzz_server, make_phone, engine, how):
    p = make_phone()
    url = f"{fuzz_server.url}/osmand"

    @FUZZ
    @given(osmand_params(), JSON)
    def run(params, noise):
        before = rows(engine, p.person_id)
        if how == "get":
            response = requests.get(url, params={"id": p.token, **params}, timeout=15)
        elif how == "form":
            response = requests.post(url, data={"id": p.token, **params}, timeout=15)
        else:
            body = {
                "device_id": p.token,
                "location": {
                    "timestamp": params["timestamp"],
                    "coords": {"latitude": params["lat"], "longitude": params["lon"], "x": noise},
                    "battery": noise,
                    "extras": noise,
                },
            }
            response = requests.post(
                url, data=dumps(body), headers={"Content-Type": "application/json"}, timeout=15
            )
        body = check_http(response)
        added = rows(engine, p.person_id) - before
        stored = body.get("stored", 0) if response.status_code == 200 else 0
        assert added == stored, (response.status_code, body)

    run()


def test_fuzz_owntracks(fuzz_server, make_phone, engine):
    p = make_phone()

    @FUZZ
    @given(
        st.one_of(
            JSON,
            st.fixed_dictionaries(
                {
                    "_type": st.sampled_from(["location", "transition", 5]),
                    "tst": st.one_of(NUMBERS, times()),
                    "lat": NUMBERS,
                    "lon": NUMBERS,
                    "acc": NUMBERS,
                    "vel": SCALARS,
                    "batt": SCALARS,
                }
            ),
        )
    )
    def run(body):
        before = rows(engine, p.person_id)
        response = requests.post(
            f"{fuzz_server.url}/owntracks/{p.token}",
            data=dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=15,
        )
        check_http(response)
        added = rows(engine, p.person_id) - before
        # OwnTracks' answer carries no counts: a fix is stored only if it was answered 200.
        assert added <= (1 if response.status_code == 200 else 0)

    run()


def test_fuzz_overland(fuzz_server, make_phone, engine):
    p = make_phone()

    feature = st.fixed_dictionaries(
        {
            "type": st.just("Feature"),
            "geometry": st.one_of(
                JSON,
                st.fixed_dictionaries(
                    {"type": st.just("Point"), "coordinates": st.lists(NUMBERS, max_size=3)}
                ),
            ),
            "properties": st.one_of(
                JSON, st.fixed_dictionaries({"timestamp": times(), "speed": SCALARS})
            ),
        }
    )

    @FUZZ
    @given(st.one_of(JSON, st.fixed_dictionaries({"locations": st.lists(feature, max_size=5)})))
    def run(body):
        before = rows(engine, p.person_id)
        response = requests.post(
            f"{fuzz_server.url}/overland",
            data=dumps(body),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {p.token}"},
            timeout=15,
        )
        answer = check_http(response)
        added = rows(engine, p.person_id) - before
        assert added == (answer["stored"] if response.status_code == 200 else 0), answer

    run()


# --- staff JSON endpoints ------------------------------------------------------------------


def test_fuzz_login(fuzz_server, make_user):
    username, _ = make_user("viewer")

    @FUZZ
    @given(st.one_of(JSON, st.fixed_dictionaries({"username": SCALARS, "password": SCALARS})))
    def run(body):
        response = requests.post(
            f"{fuzz_server.url}/api/v1/session",
            data=dumps(body),
            headers={"Content-Type": "application/json"},
            timeout=15,
        )
        check_http(response)
        assert response.status_code in (400, 401), response.text[:200]

    run()


@pytest.mark.parametrize(
    "method, path, as_json",
    [
        ("post", "/api/v1/incidents", True),
        ("put", "/api/v1/people/{person}/patrol-unit", True),
        ("post", "/api/v1/units/import", True),
        ("get", "/api/v1/alerts", False),
        ("get", "/api/v1/live", False),
        ("get", "/api/v1/people/{person}/track", False),
        ("get", "/api/v1/people/{person}/track.gpx", False),
        ("get", "/api/v1/incidents/1/candidates", False),
    ],
)
def test_fuzz_staff_endpoints(fuzz_server, make_user, make_phone, method, path, as_json):
    username, password = make_user("admin")
    http = requests.Session()
    assert (
        http.post(
            f"{fuzz_server.url}/api/v1/session",
            json={"username": username, "password": password},
            timeout=10,
        ).status_code
        == 200
    )
    url = fuzz_server.url + path.format(person=make_phone().person_id)
    query_names = st.sampled_from(["limit", "kind", "open", "bbox", "from", "to", "simplify"])

    @FUZZ
    @given(JSON, st.dictionaries(query_names, PARAM_TEXT | times().map(str), max_size=3))
    def run(body, query):
        if as_json:
            response = http.request(
                method,
                url,
                data=dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=15,
            )
        else:
            response = http.request(method, url, params=query, timeout=15)
        check_http(response)

    run()
