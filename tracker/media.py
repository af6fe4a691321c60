"""Photos: the check that turns an upload into a clean image, and where the files are kept.

A photo is kept under the SHA-256 of its re-encoded bytes (content addressing): writing
the same photo twice writes one file, and a file written for a report whose transaction
then failed is harmless (it is simply not referenced). The PhotoStore protocol is all the
rest of the tracker uses, so an S3-compatible store can replace the folder later.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from flask import Flask, current_app
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

# Pillow format -> (Content-Type, the modes it is saved in, save options).
_FORMATS: dict[str, tuple[str, tuple[str, ...], dict[str, int]]] = {
    "JPEG": ("image/jpeg", ("L", "RGB"), {"quality": 85}),
    "PNG": ("image/png", ("1", "L", "LA", "RGB", "RGBA"), {}),
    "WEBP": ("image/webp", ("RGB", "RGBA"), {"quality": 85}),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PhotoError(ValueError):
    """An upload is not a photo this server keeps; the message names the rule."""


class CheckedPhoto(NamedTuple):
    """A photo re-encoded without metadata, ready to store."""

    data: bytes
    content_type: str
    width: int
    height: int


def checked_photo(data: bytes, max_bytes: int, max_pixels: int) -> CheckedPhoto:
    """Return an upload re-encoded without metadata (EXIF, text chunks, ICC), upright.

    The format is read from the content, never from a name. EXIF's orientation is applied
    to the pixels before EXIF is dropped, so the photo still shows the right way up. The
    size is read from the header, before any pixel is decoded, so a small file that would
    expand into gigabytes (a decompression bomb) is refused for what it claims.

    Args:
        data: the uploaded file's bytes.
        max_bytes: the largest upload accepted.
        max_pixels: the most pixels (width × height) accepted.

    Returns:
        The re-encoded bytes, their Content-Type, and the width and height as stored.

    Raises:
        PhotoError: "larger than N bytes", "not a JPEG, PNG or WebP image" or
            "more than N pixels".
    """
    if len(data) > max_bytes:
        raise PhotoError(f"larger than {max_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data), formats=tuple(_FORMATS)) as image:
            if image.width * image.height > max_pixels:
                raise PhotoError(f"more than {max_pixels} pixels")
            fmt = image.format or ""
            content_type, modes, options = _FORMATS[fmt]
            image.load()  # only the first frame: an animation is kept as a still
            clean = _upright(image)
            if clean.mode not in modes:
                clean = clean.convert(_target_mode(clean, modes))
            clean.info = {}
            out = io.BytesIO()
            clean.save(out, fmt, **options)
    except Image.DecompressionBombError:
        raise PhotoError(f"more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, KeyError) as exc:
        if isinstance(exc, PhotoError):
            raise
        # Truncated or corrupt data raises any of these from deep inside a decoder.
        raise PhotoError("not a JPEG, PNG or WebP image") from None
    return CheckedPhoto(out.getvalue(), content_type, clean.width, clean.height)


def _upright(image: Image.Image) -> Image.Image:
    """Return the image turned as its EXIF orientation says, or as it is if that is unreadable."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError, IndexError):
        # A phone's broken EXIF must not cost the report its photo; the pixels are kept.
        log.info("photo with unreadable EXIF orientation kept as stored")
        return image.copy()


def _target_mode(image: Image.Image, modes: tuple[str, ...]) -> str:
    """Return the mode to save an image in: with alpha if it has transparency and may keep it."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if has_alpha and "RGBA" in modes:
        return "RGBA"
    if image.mode.startswith(("I", "F")) and "L" in modes:
        return "L"
    return "RGB"


# --- storage ---------------------------------------------------------------------------


class PhotoStore(Protocol):
    """Where photo files live, addressed by the SHA-256 of their bytes."""

    def put(self, data: bytes) -> str:
        """Store the bytes (once, however often they are put); return their SHA-256 hex."""
        ...

    def open(self, sha256: str) -> BinaryIO:
        """Return a readable stream of a stored photo; FileNotFoundError if there is none."""
        ...

    def exists(self, sha256: str) -> bool:
        """Return whether a photo with this SHA-256 is stored."""
        ...


class FolderPhotoStore:
    """Photos as files in a folder: root/ab/abcdef… (the first two hex digits fan out)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Keep photos under `root` (made when the first photo is stored)."""
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Return the file a photo with this SHA-256 is kept in."""
        if not _SHA256.match(sha256):
            raise ValueError("sha256: must be 64 lower-case hex digits")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> str:
        """Write the bytes atomically (temporary file, fsync, rename); return their SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if target.exists():
            return sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                # The incident that names this file is committed next: the file must
                # survive a power cut that the commit survives.
                os.fsync(file.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return sha256

    def open(self, sha256: str) -> BinaryIO:
        """Return the stored photo opened for reading."""
        return self.path(sha256).open("rb")

    def exists(self, sha256: str) -> bool:
        """Return whether the photo's file is there."""
        return self.path(sha256).is_file()


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def init_app(app: Flask) -> None:
    """Give `app` its photo store (a folder at PHOTO_DIR) and Pillow's decompression guard."""
    app.extensions["photo_store"] = FolderPhotoStore(app.config["PHOTO_DIR"])
    # Pillow refuses to open images beyond twice this (DecompressionBombError); our own
    # check in checked_photo() refuses anything beyond PHOTO_MAX_PIXELS before decoding.
    Image.MAX_IMAGE_PIXELS = app.config["PHOTO_MAX_PIXELS"]


def photo_store() -> PhotoStore:
    """Return the current app's photo store."""
    return current_app.extensions["photo_store"]
