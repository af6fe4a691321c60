"""Fetch real recorded GPS traces: the GPX test files shipped in gpxpy's source package.

Run by `scripts/setup.sh test`; idempotent. The files land in var/testdata/gpx/.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

GPXPY_VERSION = "1.6.2"
ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / "var" / "testdata" / "gpx"
# Real tracks recorded on GPS devices (a car drive, hikes), with a time on each point.
WANTED = (
    "around-visnjan-with-car.gpx",
    "korita-zbevnica.gpx",
    "cerknicko-jezero.gpx",
    "Mojstrovka.gpx",
)


def main() -> int:
    """Download gpxpy's sdist with pip and extract its GPX test files."""
    if all((TARGET / name).exists() for name in WANTED):
        return 0
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"gpxpy=={GPXPY_VERSION}",
                "-d",
                tmp,
            ],
            check=True,
        )
        (sdist,) = Path(tmp).glob("gpxpy-*.tar.gz")
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                name = Path(member.name).name
                if "/test_files/" in member.name and name.endswith(".gpx"):
                    source = archive.extractfile(member)
                    assert source is not None
                    (TARGET / name).write_bytes(source.read())
    missing = [name for name in WANTED if not (TARGET / name).exists()]
    if missing:
        print(f"missing from gpxpy {GPXPY_VERSION}: {missing}", file=sys.stderr)
        return 1
    print(f"GPX traces ready in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
