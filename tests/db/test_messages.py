"""Errors a person reads: English for scripts, the reader's language for people."""

from __future__ import annotations

import json

import pytest

from tracker.messages import Message, UserError
from tracker.zones.importer import BoundaryImportError

from .test_zones_api import login, unit_count

NAME_EMPTY = UserError(
    "features[%(index)s]: properties.name %(problem)s",
    index=4,
    problem=Message("must not be empty"),
)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Accept-Language": "zh-CN,zh;q=0.9"}, "features[4]：properties.name 不能为空"),
        ({}, "features[4]：properties.name 不能为空"),  # Chinese by default
        ({"Accept-Language": "en-GB"}, "features[4]: properties.name must not be empty"),
        (
            {"Accept-Language": "en", "Cookie": "lang=zh_CN"},
            "features[4]：properties.name 不能为空",
        ),
    ],
)
def test_localized_follows_the_request_locale(app, headers, expected) -> None:
    """Render in the request's locale, fragments included; str() stays English."""
    with app.test_request_context(headers=headers):
        assert NAME_EMPTY.localized() == expected
        assert str(NAME_EMPTY) == "features[4]: properties.name must not be empty"


def test_localized_is_english_without_a_request(app) -> None:
    """Fall back to English in an app context without a request (the CLI, workers)."""
    with app.app_context():
        assert NAME_EMPTY.localized() == str(NAME_EMPTY)


def test_boundary_import_error_is_a_user_error() -> None:
    """Keep BoundaryImportError a ValueError and a UserError."""
    exc = BoundaryImportError("features: must be a non-empty list")
    assert isinstance(exc, UserError) and isinstance(exc, ValueError)
    assert str(exc) == "features: must be a non-empty list"


@pytest.fixture()
def admin(client, make_user):
    """Log an admin in."""
    login(client, make_user, "admin")


def post_import(client, body: str, language: str):
    """Post a body to the import API in a language; return the 400's JSON."""
    response = client.post(
        "/api/v1/units/import",
        data=body,
        content_type="application/json",
        headers={"Accept-Language": language},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.json


def test_import_error_carries_english_error_and_chinese_message(app, client, admin) -> None:
    """Answer `error` in English and `message` in the reader's Chinese; store nothing."""
    feature = {
        "type": "Feature",
        "properties": {"name": "第3网格", "kind": "zone"},
        "geometry": {"type": "Polygon", "coordinates": []},
    }
    doc = {"type": "FeatureCollection", "features": [feature]}
    before = unit_count(app)
    body = post_import(client, json.dumps(doc), "zh-CN")
    assert unit_count(app) == before
    assert body == {
        "error": "features[0] (第3网格): properties.kind must be one of district, street, "
        "community, grid, got 'zone'",
        "message": "features[0] (第3网格)：properties.kind 必须是 district, street, community, "
        "grid 之一，实际为 'zone'",
    }


def test_import_error_message_in_english_for_english_readers(client, admin) -> None:
    """Answer `message` equal to `error` when the reader asks for English."""
    body = post_import(client, json.dumps({"type": "FeatureCollection", "features": []}), "en")
    assert body == {
        "error": "features: must be a non-empty list",
        "message": "features: must be a non-empty list",
    }


def test_import_body_that_is_not_json_is_localized(client, admin) -> None:
    """Give the not-JSON refusal a `message` too."""
    body = post_import(client, "{not json", "zh-CN")
    assert body["error"] == "body: must be a GeoJSON FeatureCollection in JSON"
    assert body["message"].startswith("上传内容（body）：")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"LANG": "zh_CN.UTF-8", "LC_ALL": None, "LC_MESSAGES": None},
            "错误：--kind：必须是 district, street, community, grid 之一，实际为 'zone'",
        ),
        (
            {"LANG": "en_US.UTF-8", "LC_ALL": None, "LC_MESSAGES": "zh_CN.UTF-8"},
            "错误：--kind：必须是 district, street, community, grid 之一，实际为 'zone'",
        ),
        (
            {"LANG": "zh_CN.UTF-8", "LC_ALL": "C.UTF-8", "LC_MESSAGES": None},
            "Error: --kind: must be one of district, street, community, grid, got 'zone'",
        ),
        (
            {"LANG": None, "LC_ALL": None, "LC_MESSAGES": None},
            "Error: --kind: must be one of district, street, community, grid, got 'zone'",
        ),
    ],
)
def test_cli_error_follows_the_operator_locale(runner, env, expected) -> None:
    """Print InputError in Chinese when LC_ALL, LC_MESSAGES or LANG (in that order) is zh."""
    result = runner.invoke(args=["units", "add", "Grid 9", "--kind", "zone"], env=env)
    assert result.exit_code == 1
    assert result.output.splitlines() == [expected]


def test_cli_wraps_a_boundary_import_error_in_chinese(runner, tmp_path) -> None:
    """Render the import's own error inside the CLI's line, both in Chinese."""
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [5]}), encoding="utf-8")
    env = {"LANG": "zh_CN.UTF-8", "LC_ALL": None, "LC_MESSAGES": None}
    result = runner.invoke(args=["units", "import", str(path)], env=env)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "错误：GEOJSON：grids.geojson：未导入任何数据：features[0]：必须是 GeoJSON 要素（Feature）"
    ]
