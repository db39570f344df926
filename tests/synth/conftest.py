"""Shared fixtures of the renderer tests: small images keep the suite fast on two cores."""

from __future__ import annotations

import pytest

from auperf.synth import FaceRenderer


@pytest.fixture(scope="session")
def renderer128() -> FaceRenderer:
    return FaceRenderer(seed=0, size=128)
