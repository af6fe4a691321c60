"""Make the map's Latin glyphs (SDF protobuf ranges) from fonts installed on this machine.

MapLibre draws label text from signed-distance-field glyphs fetched in ranges of 256 code
points ({fontstack}/{start}-{end}.pbf). Chinese characters are drawn by the browser from a
local font (localIdeographFontFamily); everything else (Latin letters, digits, punctuation,
the CJK and full-width punctuation that are not ideographs) comes from these files, so a
map with no internet still labels "3 人在岗" and "Beijing". The distance field is computed
as MapLibre's own TinySDF does it (24 px, buffer 3, radius 8, cutoff 0.25), so the glyphs
made here and the ones the browser draws line up.

Usage: python scripts/glyphs.py [OUT_DIR]   (scripts/setup.sh runs it; default static/vendor/glyphs)
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE, BUFFER, RADIUS, CUTOFF = 24, 3, 8, 0.25
INF = 1e20
# The ranges a Chinese or English label uses beyond ideographs: Latin, Latin-1 and
# Latin Extended-A, general punctuation, CJK symbols and punctuation, full-width forms.
RANGES = (0, 256, 8192, 12288, 65280)
LATIN = ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSans-Oblique.ttf")
CJK = "wqy/wqy-microhei.ttc"
# The font stacks @protomaps/basemaps asks for, and the one the app's own labels use.
STACKS = {
    "Noto Sans Regular": LATIN[0],
    "Noto Sans Medium": LATIN[1],
    "Noto Sans Italic": LATIN[2],
}
FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts"))


def _font_path(relative: str) -> Path:
    """Return the installed font file, or exit naming the Debian package to install."""
    for base in FONT_DIRS:
        if (base / relative).is_file():
            return base / relative
    sys.exit(f"glyphs: {relative} is not installed (fonts-dejavu-core, fonts-wqy-microhei)")


def _edt1d(grid: list[float], offset: int, stride: int, length: int) -> None:
    """Replace one row or column of squared distances by its 1-D distance transform."""
    f = [grid[offset + q * stride] for q in range(length)]
    v = [0] * length
    z = [0.0] * (length + 1)
    z[0], z[1] = -INF, INF
    k = 0
    for q in range(1, length):
        while True:
            r = v[k]
            s = (f[q] - f[r] + q * q - r * r) / (q - r) / 2
            if s > z[k]:
                break
            k -= 1  # z[0] is -INF, so k never goes below 0
        k += 1
        v[k] = q
        z[k] = s
        z[k + 1] = INF
    k = 0
    for q in range(length):
        while z[k + 1] < q:
            k += 1
        r = v[k]
        grid[offset + q * stride] = f[r] + (q - r) * (q - r)


def _edt(grid: list[float], x0: int, y0: int, width: int, height: int, size: int) -> None:
    """Replace a box of squared distances by its 2-D distance transform (columns, then rows)."""
    for x in range(x0, x0 + width):
        _edt1d(grid, y0 * size + x, size, height)
    for y in range(y0, y0 + height):
        _edt1d(grid, y * size + x0, 1, width)


def _varint(value: int) -> bytes:
    """Return a protobuf varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value: int | bytes | str, signed: bool = False) -> bytes:
    """Return one protobuf field: a varint (zigzag when signed) or length-delimited bytes."""
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return _varint(number << 3 | 2) + _varint(len(value)) + value
    if signed:
        value = (value << 1) ^ (value >> 63)
    return _varint(number << 3) + _varint(value)


def glyph(font: ImageFont.FreeTypeFont, code: int) -> bytes:
    """Return one glyph message: its distance field and metrics at 24 px."""
    char = chr(code)
    advance = round(font.getlength(char))
    left, top, right, bottom = font.getbbox(char, anchor="ls")
    glyph_top = math.ceil(-top)
    x0 = math.floor(left)
    width = max(0, math.ceil(right - x0))
    height = max(0, glyph_top + math.ceil(bottom))
    message = _field(1, code)
    if width and height and right > left:
        size_w, size_h = width + 2 * BUFFER, height + 2 * BUFFER
        image = Image.new("L", (width, height), 0)
        ImageDraw.Draw(image).text((-x0, glyph_top), char, font=font, fill=255, anchor="ls")
        alpha = image.tobytes()
        outer = [INF] * (size_w * size_h)
        inner = [0.0] * (size_w * size_h)
        for y in range(height):
            for x in range(width):
                a = alpha[y * width + x] / 255
                if a == 0:
                    continue
                j = (y + BUFFER) * size_w + x + BUFFER
                if a == 1:
                    outer[j], inner[j] = 0.0, INF
                else:
                    d = 0.5 - a
                    outer[j] = d * d if d > 0 else 0.0
                    inner[j] = d * d if d < 0 else 0.0
        _edt(outer, 0, 0, size_w, size_h, size_w)
        _edt(inner, BUFFER, BUFFER, width, height, size_w)
        bitmap = bytes(
            min(255, max(0, round(255 - 255 * ((math.sqrt(o) - math.sqrt(i)) / RADIUS + CUTOFF))))
            for o, i in zip(outer, inner, strict=True)
        )
        message += _field(2, bitmap)
    else:
        width = height = 0
    # MapLibre aligns its locally drawn CJK glyphs with server glyphs 27.5 px below "top".
    message += _field(3, width) + _field(4, height)
    message += _field(5, x0, signed=True) + _field(6, glyph_top - 27, signed=True)
    return message + _field(7, advance)


def _has_glyph(font: ImageFont.FreeTypeFont, code: int, missing: bytes) -> bool:
    """Return whether the font draws `code` itself (not its .notdef box)."""
    if code < 32 or 127 <= code < 160:
        return False
    mask = font.getmask(chr(code))
    return code == 32 or bytes(mask) != missing or mask.size == (0, 0)


def glyph_range(stack: str, font_file: Path, start: int) -> bytes:
    """Return the protobuf of one 256-code-point range of a font stack."""
    # The basic layout draws one code point as it is (raqm would shape or refuse it).
    font = ImageFont.truetype(str(font_file), SIZE, layout_engine=ImageFont.Layout.BASIC)
    missing = bytes(font.getmask("\U0010fffd"))
    glyphs = b"".join(
        _field(3, glyph(font, code))
        for code in range(start, start + 256)
        if _has_glyph(font, code, missing)
    )
    stack_message = _field(1, stack) + _field(2, f"{start}-{start + 255}") + glyphs
    return _field(1, stack_message)


def main(out_dir: Path) -> None:
    """Write every range of every stack under out_dir/<stack>/."""
    for stack, latin in STACKS.items():
        folder = out_dir / stack
        folder.mkdir(parents=True, exist_ok=True)
        for start in RANGES:
            font_file = _font_path(CJK if start >= 12288 else latin)
            (folder / f"{start}-{start + 255}.pbf").write_bytes(
                glyph_range(stack, font_file, start)
            )


if __name__ == "__main__":
    default = Path(__file__).resolve().parent.parent / "static" / "vendor" / "glyphs"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
