"""Measure what the server spends checking one report photo (tracker.media.checked_photo).

Usage (from the repository root):

    .venv/bin/python bench/photos.py [--runs 20] [--seed 2026]

Each photo is decoded, turned upright, re-encoded without metadata and measured, on the
caller's thread (the server does this on one worker thread per process). The phone app
sends photos resized to at most 1600 px; a GPS-app user or an older phone may send a full
12-megapixel camera JPEG. The pictures are made in code: smooth gradients plus noise,
which JPEG compresses about as much as a street photo. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time

from _common import command_line, machine_note, markdown_table
from PIL import Image

from tracker.media import checked_photo

SIZES = {"phone app (1600×1200)": (1600, 1200), "camera (4000×3000)": (4000, 3000)}


def picture(size: tuple[int, int], seed: int) -> bytes:
    """Return a JPEG (quality 92, as phone cameras save) of a noisy gradient."""
    rng = random.Random(seed)
    width, height = size
    small = Image.new("RGB", (width // 8, height // 8))
    small.putdata(
        [
            (x * 255 // (width // 8), y * 255 // (height // 8), rng.randrange(256))
            for y in range(height // 8)
            for x in range(width // 8)
        ]
    )
    out = io.BytesIO()
    small.resize(size, Image.Resampling.BICUBIC).save(out, "JPEG", quality=92)
    return out.getvalue()


def main() -> None:
    """Time checked_photo for each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rows = []
    for label, size in SIZES.items():
        data = picture(size, args.seed)
        times_ms = []
        for _ in range(args.runs):
            started = time.perf_counter()
            checked = checked_photo(data, 5 * 1024 * 1024, 40_000_000)
            times_ms.append((time.perf_counter() - started) * 1000)
        quantiles = statistics.quantiles(times_ms, n=20)
        rows.append(
            [
                label,
                f"{len(data) / 1024:,.0f} KB",
                f"{len(checked.data) / 1024:,.0f} KB",
                f"{statistics.median(times_ms):,.0f} / {quantiles[18]:,.0f} ms",
                f"{min(times_ms):,.0f}–{max(times_ms):,.0f} ms",
            ]
        )
    print(machine_note())
    print(markdown_table(["photo", "sent", "stored", "p50 / p95", "range"], rows))
    print(f"command: {command_line()}")


if __name__ == "__main__":
    main()
