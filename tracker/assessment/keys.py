"""The keys of kept report figures: a digest of everything a figure was computed from."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def inputs_key(*parts: Any) -> str:
    """Return the SHA-256 (hex) of the parts as JSON: equal inputs, equal key."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def digest(data: bytes) -> str:
    """Return the SHA-256 (hex) of bytes, e.g. a boundary's WKB."""
    return hashlib.sha256(data).hexdigest()
