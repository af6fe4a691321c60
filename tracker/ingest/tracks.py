"""Recorded tracks: read GPX, GeoJSON and CSV files into position items, and write them back."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import gpxpy
import gpxpy.gpx

CSV_FIELDS = ("ts", "lat", "lon", "accuracy", "altitude", "speed", "heading", "battery")


class TrackFileError(ValueError):
    """A track file cannot be read; the message names the file format problem."""


def read_track(path: Path) -> list[dict[str, Any]]:
    """Return the points of a .gpx, .geojson/.json or .csv file as /device position items.

    Raises:
        TrackFileError: the file is not a readable track of that format.
    """
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".gpx":
        return _read_gpx(text)
    if suffix in {".geojson", ".json"}:
        return _read_geojson(text)
    if suffix == ".csv":
        return _read_csv(text)
    raise TrackFileError(f"{path.name}: unknown format (use .gpx, .geojson, .json or .csv)")


def _read_gpx(text: str) -> list[dict[str, Any]]:
    """Read track points (then route points) of a GPX document."""
    try:
        gpx = gpxpy.parse(text)
    except gpxpy.gpx.GPXException as exc:
        raise TrackFileError(f"gpx: {exc}") from None
    points = [pt for trk in gpx.tracks for seg in trk.segments for pt in seg.points]
    points += [pt for route in gpx.routes for pt in route.points]
    items = []
    for pt in points:
        item: dict[str, Any] = {
            "ts": pt.time.isoformat() if pt.time else None,
            "lat": pt.latitude,
            "lon": pt.longitude,
        }
        if pt.time is not None and pt.time.tzinfo is None:
            raise TrackFileError("gpx: point times must be UTC (end in Z)")
        if pt.elevation is not None:
            item["altitude"] = pt.elevation
        speed = getattr(pt, "speed", None)
        if speed is not None:
            item["speed"] = speed
        items.append(item)
    return items


def _read_geojson(text: str) -> list[dict[str, Any]]:
    """Read a FeatureCollection of Point features with a time property."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TrackFileError(f"geojson: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise TrackFileError("geojson: must be a FeatureCollection of Point features")
    items = []
    for index, feature in enumerate(doc.get("features") or []):
        geometry = feature.get("geometry") or {} if isinstance(feature, dict) else {}
        if geometry.get("type") != "Point":
            raise TrackFileError(f"geojson: features[{index}] must be a Point")
        props = feature.get("properties") or {}
        lon, lat = geometry["coordinates"][:2]
        item = {
            "ts": props.get("ts", props.get("time", props.get("timestamp"))),
            "lat": lat,
            "lon": lon,
        }
        for key in CSV_FIELDS[3:]:
            if props.get(key) is not None:
                item[key] = props[key]
        items.append(item)
    return items


def _read_csv(text: str) -> list[dict[str, Any]]:
    """Read a CSV file with a header naming at least ts, lat and lon."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"ts", "lat", "lon"} - set(reader.fieldnames or [])
    if missing:
        raise TrackFileError(f"csv: header lacks {', '.join(sorted(missing))}")
    items = []
    for row in reader:
        item: dict[str, Any] = {"ts": row["ts"]}
        for key in CSV_FIELDS[1:]:
            value = (row.get(key) or "").strip()
            if value:
                try:
                    item[key] = float(value)
                except ValueError:
                    item[key] = value  # validation rejects it with the field's name
        if isinstance(item["ts"], str) and item["ts"].isdigit():
            item["ts"] = int(item["ts"])
        items.append(item)
    return items


def write_gpx(name: str, points: Iterable[Any]) -> str:
    """Return a GPX 1.1 document with one track of the given position rows."""
    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack(name=name)
    segment = gpxpy.gpx.GPXTrackSegment()
    for p in points:
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(
                p.lat, p.lon, elevation=p.altitude_m, time=p.ts, speed=p.speed_mps
            )
        )
    track.segments.append(segment)
    gpx.tracks.append(track)
    return gpx.to_xml(version="1.1")


def write_csv(points: Iterable[Any]) -> str:
    """Return the position rows as CSV with the same columns that import reads."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for p in points:
        writer.writerow(
            [
                p.ts.isoformat(),
                p.lat,
                p.lon,
                p.accuracy_m,
                p.altitude_m,
                p.speed_mps,
                p.heading_deg,
                p.battery,
            ]
        )
    return out.getvalue()
