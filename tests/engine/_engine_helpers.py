"""Helpers of the engine tests: which builder libraries are installed."""

from __future__ import annotations

import importlib.util

import pytest

HAS_RTX = importlib.util.find_spec("tensorrt_rtx") is not None
HAS_TRT = importlib.util.find_spec("tensorrt") is not None
needs_builder = pytest.mark.skipif(
    not (HAS_RTX or HAS_TRT),
    reason="neither tensorrt nor tensorrt_rtx is installed (pip install tensorrt-rtx-cu13)",
)
needs_rtx = pytest.mark.skipif(
    not HAS_RTX or HAS_TRT,
    reason="needs tensorrt_rtx as the builder (pip install tensorrt-rtx-cu13) and no tensorrt",
)
