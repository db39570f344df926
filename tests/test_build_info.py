"""auperf.build_info() and the CPU thread setting."""

from __future__ import annotations

import re

import pytest

import auperf
from auperf import errors


def test_build_info_fields():
    info = auperf.build_info()
    assert info["version"] == auperf.__version__
    assert info["core_version"] == auperf.__version__, "compiled core and package disagree"
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert isinstance(info["cuda_compiled"], bool)
    assert isinstance(info["cuda_archs"], list)
    assert isinstance(info["cuda_device_count"], int) and info["cuda_device_count"] >= 0
    assert isinstance(info["num_threads"], int) and info["num_threads"] >= 1
    assert info["warp_cpu_path"] in ("avx2", "sse4.1", "scalar")
    if info["cuda_compiled"]:
        assert re.fullmatch(r"\d+\.\d+", info["cuda_runtime_version"])
        assert any(a.startswith("80") for a in info["cuda_archs"])
        assert any(a.startswith("90") for a in info["cuda_archs"])
    else:
        assert info["cuda_runtime_version"] is None
        assert info["cuda_archs"] == []


def test_device_count_matches_core_and_never_raises():
    from auperf import _core

    assert _core.cuda_device_count() == auperf.build_info()["cuda_device_count"]


def test_set_num_threads_roundtrip():
    before = auperf.get_num_threads()
    try:
        auperf.set_num_threads(1)
        assert auperf.get_num_threads() == 1
        assert auperf.build_info()["num_threads"] == 1
        auperf.set_num_threads(3)
        assert auperf.get_num_threads() == 3
    finally:
        auperf.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_set_num_threads_rejects(bad):
    with pytest.raises(errors.ValueRangeError, match="n: expected an integer >= 1"):
        auperf.set_num_threads(bad)
