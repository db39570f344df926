"""Targets as data: names, validation, the registry, files."""

from __future__ import annotations

import json

import pytest

from auperf.engine import Target, TargetError, get_target, list_targets, load_targets
from auperf.errors import AuperfError


def test_systematic_names():
    assert Target(precision="fp16", gpu_arch="sm86").name == "m0_tensorrt-fp16_dynamic-1x8x64_sm86"
    t = Target(precision="int8", min_batch=8, opt_batch=8, max_batch=8, gpu_arch="sm120")
    assert t.name == "m0_tensorrt-int8_static-8_sm120" and t.static
    assert Target(name="mine").name == "mine"
    assert Target(gpu_arch="sm89").compute_capability == (8, 9)
    assert Target().compute_capability is None  # native
    assert Target(min_batch=2, opt_batch=4, max_batch=16).profile_shapes((3, 64, 64)) == {
        "min": (2, 3, 64, 64),
        "opt": (4, 3, 64, 64),
        "max": (16, 3, 64, 64),
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"backend": "openvino"}, "backend"),
        ({"precision": "bf16"}, "precision"),
        ({"min_batch": 0}, "min_batch"),
        ({"min_batch": 4, "opt_batch": 2}, "min_batch <= opt_batch"),
        ({"opt_batch": 80}, "opt_batch <= max_batch"),
        ({"max_batch": 2.5}, "max_batch"),
        ({"gpu_arch": "ampere"}, "gpu_arch"),
        ({"gpu_arch": "sm8"}, "gpu_arch"),
        ({"workspace_mb": True}, "workspace_mb"),
        ({"name": "a/b"}, "name"),
        ({"model": "m_0"}, "model"),
    ],
)
def test_bad_fields_raise_naming_the_field(kwargs, field):
    with pytest.raises(TargetError, match=field) as ei:
        Target(**kwargs)
    assert isinstance(ei.value, AuperfError) and isinstance(ei.value, ValueError)


def test_registry():
    names = [t.name for t in list_targets()]
    assert names == sorted(names) and len(names) == len(set(names))
    for arch in ("sm80", "sm86", "sm89", "sm120", "native"):
        for p in ("fp32", "fp16", "int8"):
            assert f"m0_tensorrt-{p}_dynamic-1x8x64_{arch}" in names
    t = get_target("m0_tensorrt-fp16_dynamic-1x8x64_sm86")
    assert (t.precision, t.min_batch, t.opt_batch, t.max_batch, t.gpu_arch) == (
        "fp16",
        1,
        8,
        64,
        "sm86",
    )
    assert get_target(t) is t
    with pytest.raises(TargetError, match="unknown target 'fast'"):
        get_target("fast")


def test_systematic_names_parse_back():
    for t in list_targets():
        assert Target.from_name(t.name) == t
    t = get_target("m0_tensorrt-int8_static-16_sm89")  # not registered: parsed
    assert (t.precision, t.min_batch, t.max_batch, t.gpu_arch) == ("int8", 16, 16, "sm89")
    with pytest.raises(TargetError, match="precision"):
        get_target("m0_tensorrt-fp64_dynamic-1x8x64_sm86")
    with pytest.raises(TargetError, match="min_batch <= opt_batch"):
        Target.from_name("m0_tensorrt-fp16_dynamic-8x1x64_sm86")
    with pytest.raises(TargetError, match="not a systematic target name"):
        Target.from_name("m0-fp16")


def test_load_targets_json_and_yaml(tmp_path):
    data = [
        {"precision": "fp16", "min_batch": 1, "opt_batch": 16, "max_batch": 32, "gpu_arch": "sm89"},
        {"precision": "fp32", "min_batch": 4, "opt_batch": 4, "max_batch": 4, "name": "edge"},
    ]
    p = tmp_path / "t.json"
    p.write_text(json.dumps(data))
    ts = load_targets(p)
    assert [t.name for t in ts] == ["m0_tensorrt-fp16_dynamic-1x16x32_sm89", "edge"]
    y = tmp_path / "t.yaml"
    y.write_text(
        "targets:\n"
        "  - {precision: int8, gpu_arch: sm80, min_batch: 1, opt_batch: 2, max_batch: 4}\n"
    )
    (t,) = load_targets(y, register=True)
    assert t.name == "m0_tensorrt-int8_dynamic-1x2x4_sm80"
    assert get_target(t.name) == t
    assert Target.from_dict(t.to_dict()) == t


def test_load_targets_errors(tmp_path):
    with pytest.raises(TargetError, match="no such targets file"):
        load_targets(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TargetError, match="cannot parse"):
        load_targets(bad)
    bad.write_text(json.dumps([{"precision": "fp16", "colour": 1}]))
    with pytest.raises(TargetError, match=r"targets\[0\]: unknown fields \['colour'\]"):
        load_targets(bad)
    bad.write_text(json.dumps([{"precision": "fp64"}]))
    with pytest.raises(TargetError, match=r"targets\[0\]: precision"):
        load_targets(bad)
    bad.write_text(json.dumps([{"name": "x"}, {"name": "x"}]))
    with pytest.raises(TargetError, match="appear twice"):
        load_targets(bad)
    bad.write_text("[]")
    with pytest.raises(TargetError, match="non-empty list"):
        load_targets(bad)
