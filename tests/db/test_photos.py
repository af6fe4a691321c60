"""Photos of reports: checked by content, re-encoded without metadata, stored by content."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta

import pytest
from PIL import ExifTags, Image, PngImagePlugin
from sqlalchemy import text

from tracker import media, store

MAX_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 40_000_000
GPS_LATITUDE = (39.0, 55.0, 12.0)


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    """Return EXIF naming a GPS position, a phone model and an orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "Pixel 9 Pro"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 24.0, 27.0)
    return exif


def encoded(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **options) -> bytes:
    """Return a small picture (a red square on blue) encoded in a format."""
    image = Image.new(mode, size, "blue")
    image.paste("red", (0, 0, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def reopened(data: bytes) -> Image.Image:
    """Return re-encoded bytes opened again, fully decoded."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_jpeg_with_gps_exif_is_reencoded_without_it():
    upload = encoded("JPEG", exif=exif_with_gps())
    assert (
        Image.open(io.BytesIO(upload)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    )  # the input has it

    photo = media.checked_photo(upload, MAX_BYTES, MAX_PIXELS)

    assert (photo.content_type, photo.width, photo.height) == ("image/jpeg", 64, 48)
    clean = reopened(photo.data)
    assert clean.format == "JPEG"
    assert dict(clean.getexif()) == {}
    assert "exif" not in clean.info
    assert b"Exif" not in photo.data and b"Pixel 9 Pro" not in photo.data
    # The picture itself survives: the top-left quarter is still red.
    red, green, blue = clean.convert("RGB").getpixel((5, 5))
    assert red > 200 and green < 60 and blue < 60


def test_the_exif_orientation_is_applied_before_it_is_dropped():
    # Orientation 6: the camera was turned; viewers rotate the stored 64×48 by 90°.
    upload = encoded("JPEG", exif=exif_with_gps(orientation=6))

    photo = media.checked_photo(upload, MAX_BYTES, MAX_PIXELS)

    assert (photo.width, photo.height) == (48, 64)
    clean = reopened(photo.data)
    assert clean.size == (48, 64)
    assert ExifTags.Base.Orientation not in clean.getexif()
    # The red quarter was top-left; turned 90° clockwise it is top-right.
    assert clean.convert("RGB").getpixel((40, 5))[0] > 200
    assert clean.convert("RGB").getpixel((5, 5))[2] > 200


def test_a_png_keeps_its_transparency_and_loses_its_text_and_exif():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home, 39.92N 116.41E")
    upload = encoded("PNG", mode="RGBA", pnginfo=info, exif=exif_with_gps())
    assert "Comment" in reopened(upload).info

    photo = media.checked_photo(upload, MAX_BYTES, MAX_PIXELS)

    assert photo.content_type == "image/png"
    clean = reopened(photo.data)
    assert clean.format == "PNG" and clean.mode == "RGBA"
    assert "Comment" not in clean.info and "exif" not in clean.info
    assert b"39.92N" not in photo.data and b"Pixel 9 Pro" not in photo.data


def test_a_webp_is_reencoded_without_exif():
    upload = encoded("WEBP", exif=exif_with_gps())
    assert "exif" in Image.open(io.BytesIO(upload)).info

    photo = media.checked_photo(upload, MAX_BYTES, MAX_PIXELS)

    assert (photo.content_type, photo.width, photo.height) == ("image/webp", 64, 48)
    clean = reopened(photo.data)
    assert clean.format == "WEBP"
    assert "exif" not in clean.info and b"Pixel 9 Pro" not in photo.data


@pytest.mark.parametrize(
    "upload",
    [
        b"rubbish on the street, not a photo\n" * 10,  # a text file named photo.jpg
        encoded("GIF"),  # an image, but not one of the three formats
        encoded("BMP"),
        encoded("JPEG")[:200],  # a JPEG cut short: the header is there, the pixels are not
        b"",
    ],
    ids=["text", "gif", "bmp", "truncated-jpeg", "empty"],
)
def test_what_is_not_a_jpeg_png_or_webp_by_content_is_refused(upload):
    with pytest.raises(media.PhotoError, match=r"^not a JPEG, PNG or WebP image$"):
        media.checked_photo(upload, MAX_BYTES, MAX_PIXELS)


def test_an_upload_larger_than_the_limit_is_refused_before_it_is_decoded():
    upload = encoded("PNG")
    assert media.checked_photo(upload, len(upload), MAX_PIXELS).width == 64  # at the limit

    with pytest.raises(media.PhotoError, match=rf"^larger than {len(upload) - 1} bytes$"):
        media.checked_photo(upload, len(upload) - 1, MAX_PIXELS)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(100, 31), (1000, 1000)], ids=["just-over", "bomb"])
def test_more_pixels_than_the_limit_are_refused(size):
    # (1000, 1000) is over twice the limit: Pillow's own decompression guard raises too.
    upload = encoded("PNG", size=size)
    limit = 3000
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with pytest.raises(media.PhotoError, match=rf"^more than {limit} pixels$"):
            media.checked_photo(upload, MAX_BYTES, limit)
        assert media.checked_photo(encoded("PNG", size=(100, 30)), MAX_BYTES, limit).width == 100
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def test_the_app_guards_pillow_against_decompression_bombs(app):
    assert app.config["PHOTO_MAX_PIXELS"] == Image.MAX_IMAGE_PIXELS


def test_the_folder_store_keeps_each_content_once_under_its_sha256(tmp_path):
    photos = media.FolderPhotoStore(tmp_path / "photos")
    data = encoded("JPEG")
    sha = hashlib.sha256(data).hexdigest()
    assert not photos.exists(sha)

    assert photos.put(data) == sha
    assert photos.put(data) == sha  # the same bytes again: the same file

    assert photos.exists(sha)
    path = tmp_path / "photos" / sha[:2] / sha
    assert path.read_bytes() == data
    assert [p.name for p in (tmp_path / "photos").rglob("*") if p.is_file()] == [sha]
    with photos.open(sha) as stream:
        assert stream.read() == data
    other = photos.put(b"other bytes")
    assert other != sha and photos.exists(other)
    assert os.listdir(tmp_path / "photos" / other[:2]) == [other]  # no temporary file left


def test_the_folder_store_refuses_names_that_are_not_a_sha256(tmp_path):
    photos = media.FolderPhotoStore(tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        photos.open("../../etc/passwd")
    with pytest.raises(FileNotFoundError):
        photos.open("0" * 64)


# --- the store's report queries ------------------------------------------------------


@pytest.fixture()
def reporter(session):
    """Return (person_id, unit_id) of a person in a unit, in the rolled-back session."""
    unit = store.people.add_unit(session, "photo street", "street", None, None)
    person = store.people.add_person(session, "reporter", "grid_worker", unit.id, None)
    return person.id, unit.id


def test_a_reported_incident_is_placed_in_the_reporters_unit_and_stored_once(session, reporter):
    person_id, unit_id = reporter
    now = datetime.now(UTC)
    first = store.reports.add_reported_incident(
        session, person_id, "key-0001", "sanitation", "垃圾堆放", (39.93, 116.41), now
    )
    again = store.reports.add_reported_incident(
        session, person_id, "key-0001", "other", "again", (10.0, 10.0), now
    )

    assert first is not None and again is None
    row = session.execute(
        text(
            "SELECT status, category, description, unit_id, reported_by, report_key, "
            "ST_Y(geom) AS lat, ST_X(geom) AS lon FROM incidents WHERE id = :id"
        ),
        {"id": first},
    ).one()
    assert tuple(row) == (
        "open",
        "sanitation",
        "垃圾堆放",
        unit_id,
        person_id,
        "key-0001",
        pytest.approx(39.93),
        pytest.approx(116.41),
    )
    kinds = session.execute(
        text("SELECT kind, person_id FROM incident_events WHERE incident_id = :id"), {"id": first}
    ).all()
    assert [tuple(k) for k in kinds] == [("reported", person_id)]
    stored = store.reports.reported_incident(session, person_id, "key-0001")
    assert (stored.id, stored.unit_id, stored.photos) == (first, unit_id, 0)
    assert store.reports.reported_incident(session, person_id, "key-0002") is None


def test_photos_and_own_reports_come_back_in_order(session, reporter):
    person_id, _ = reporter
    now = datetime.now(UTC)
    older = store.reports.add_reported_incident(
        session, person_id, "key-older", "other", "a", (39.9, 116.4), now - timedelta(hours=1)
    )
    newer = store.reports.add_reported_incident(
        session, person_id, "key-newer", "sanitation", "b", (39.9, 116.4), now
    )
    # created_at is the transaction's time for both; the newer id comes first on ties.
    store.reports.add_photos(
        session,
        newer,
        [("b" * 64, "image/png", 10, 3, 2), ("a" * 64, "image/jpeg", 20, 4, 3)],
    )

    photos = store.reports.incident_photos(session, newer)
    assert [(p.sha256, p.content_type, p.bytes, p.width, p.height) for p in photos] == [
        ("b" * 64, "image/png", 10, 3, 2),
        ("a" * 64, "image/jpeg", 20, 4, 3),
    ]
    assert photos[0].id < photos[1].id
    one = store.reports.photo_of_incident(session, newer, photos[1].id)
    assert one.sha256 == "a" * 64
    assert store.reports.photo_of_incident(session, older, photos[1].id) is None
    assert store.reports.incident_photos(session, older) == []

    reports = store.reports.own_reports(session, person_id, now - timedelta(days=7))
    assert [(r.key, r.incident_id, r.status, r.category) for r in reports] == [
        ("key-newer", newer, "open", "sanitation"),
        ("key-older", older, "open", "other"),
    ]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert store.reports.own_reports(session, person_id, later) == []


def test_the_newest_fix_is_where_a_report_without_one_is_placed(session, reporter):
    person_id, _ = reporter
    assert store.reports.newest_fix(session, person_id) is None
    session.execute(
        text(
            "INSERT INTO latest_positions (person_id, device_id, ts, received_at, geom) "
            "VALUES (:p, 1, now(), now(), ST_SetSRID(ST_MakePoint(116.3975, 39.9087), 4326))"
        ),
        {"p": person_id},
    )
    assert store.reports.newest_fix(session, person_id) == pytest.approx((39.9087, 116.3975))
