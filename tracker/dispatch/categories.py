"""The incident categories offices choose from (configurable: INCIDENT_CATEGORIES)."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app

DEFAULT_CATEGORIES = (
    {"id": "sanitation", "zh": "环境卫生", "en": "Sanitation"},
    {"id": "street_vending", "zh": "占道经营", "en": "Street vending"},
    {"id": "safety_hazard", "zh": "安全隐患", "en": "Safety hazard"},
    {"id": "damaged_facility", "zh": "设施损坏", "en": "Damaged facility"},
    {"id": "other", "zh": "其他", "en": "Other"},
)


def parse_categories(raw: str) -> list[dict[str, str]]:
    """Return the categories a setting lists, or the defaults when it is empty.

    Raises:
        ValueError: the setting is not a JSON list of {"id", "zh", "en"} with unique ids of
            at most 32 characters.
    """
    if not raw.strip():
        return [dict(c) for c in DEFAULT_CATEGORIES]
    try:
        items = json.loads(raw)
    except ValueError:
        raise ValueError("INCIDENT_CATEGORIES: not valid JSON") from None
    if not isinstance(items, list) or not items:
        raise ValueError("INCIDENT_CATEGORIES: must be a non-empty JSON list")
    seen: set[str] = set()
    result = []
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not all(
            isinstance(item.get(k), str) and item[k].strip() for k in ("id", "zh", "en")
        ):
            raise ValueError(f"INCIDENT_CATEGORIES[{position}]: needs id, zh and en strings")
        if len(item["id"]) > 32 or item["id"] in seen:
            raise ValueError(f"INCIDENT_CATEGORIES[{position}]: id must be unique, ≤ 32 chars")
        seen.add(item["id"])
        result.append({k: item[k].strip() for k in ("id", "zh", "en")})
    return result


def categories() -> list[dict[str, str]]:
    """Return this app's categories (parsed once)."""
    made: Any = current_app.extensions.get("incident_categories")
    if made is None:
        made = parse_categories(current_app.config["INCIDENT_CATEGORIES"])
        current_app.extensions["incident_categories"] = made
    return made


def category_ids() -> set[str]:
    """Return the ids a report or an incident may name."""
    return {c["id"] for c in categories()}
