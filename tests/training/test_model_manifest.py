"""The model manifest: validation of every field, versioning, round trip."""

from __future__ import annotations

import copy
import json

import pytest

from auperf.manifest import FORMAT_VERSION, Manifest, ManifestError, ManifestVersionError


def _valid() -> dict:
    return {
        "format_version": 1,
        "name": "m0-test",
        "method": "M0",
        "task": "au_occurrence",
        "description": "test model",
        "created": "2026-11-25T12:00:00+00:00",
        "aus": [{"id": 1, "name": "inner brow raiser"}, {"id": 2, "name": "outer brow raiser"}],
        "thresholds": [0.5, 0.4],
        "input": {
            "name": "image",
            "size": [64, 64],
            "channels": 3,
            "colour_order": "RGB",
            "mean": [123.675, 116.28, 103.53],
            "std": [58.395, 57.12, 57.375],
            "layout": "NCHW",
            "dtype": "float32",
            "alignment": {
                "template": "t64",
                "points": [[20, 30], [44, 30], [32, 40], [24, 50], [40, 50]],
            },
        },
        "outputs": [
            {
                "name": "logits",
                "shape": ["batch", 2, 2],
                "dtype": "float32",
                "meaning": "clean logits",
            }
        ],
        "postprocess": {"kind": "fuse_views", "input": "logits"},
        "model": {"file": "m.onnx", "format": "onnx", "opset": 17, "sha256": "0" * 64},
        "training": {"data": "synthetic", "metrics": {"mean_f1": 0.5, "per_au": {"1": 0.4}}},
    }


def _set(d: dict, path: str, value) -> None:
    keys = [
        int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")
    ]
    for k in keys[:-1]:
        d = d[k]
    if value is KeyError:
        del d[keys[-1]]
    else:
        d[keys[-1]] = value


def test_round_trip(tmp_path):
    m = Manifest.from_dict(_valid())
    assert m.au_ids == [1, 2] and m.thresholds == (0.5, 0.4) and m.input.size == (64, 64)
    assert m.output("logits").shape == ("batch", 2, 2)
    m.save(tmp_path / "m.json")
    back = Manifest.load(tmp_path / "m.json")
    assert back == m
    assert back.source == tmp_path / "m.json"
    assert back.to_dict() == _valid()


@pytest.mark.parametrize(
    "path, value, match",
    [
        ("name", KeyError, r"manifest\.name: missing"),
        ("extra_field", 1, r"manifest\.extra_field: unknown field"),
        ("method", 3, r"method: expected a non-empty string"),
        ("task", "detect", r"task: expected one of"),
        ("created", "yesterday", r"created: expected an ISO 8601"),
        ("created", "2026-11-25T12:00:00", r"created: expected a date-time with a time zone"),
        ("aus[1].id", 1, r"aus\[1\]\.id: AU 1 appears twice"),
        ("aus[0].id", "1", r"aus\[0\]\.id: expected an integer"),
        ("aus", [], r"aus: expected at least one AU"),
        ("thresholds", [0.5], r"thresholds: expected 2 items"),
        ("thresholds[1]", 1.5, r"thresholds\[1\]: expected a number in \[0.0, 1.0\]"),
        ("thresholds[0]", True, r"thresholds\[0\]: expected a finite number"),
        ("input.size", [64], r"input\.size: expected 2 items"),
        ("input.size[0]", 0, r"input\.size\[0\]: expected an integer >= 1"),
        ("input.colour_order", "RGBA", r"input\.colour_order: expected one of"),
        ("input.mean", [1, 2], r"input\.mean: expected 3 items"),
        ("input.std[1]", 0, r"input\.std\[1\]: expected a number > 0"),
        ("input.layout", "CHW", r"input\.layout: expected one of"),
        ("input.dtype", "float64", r"input\.dtype: expected one of"),
        ("input.alignment.points", [[0, 0]] * 4, r"input\.alignment\.points: expected 5 items"),
        ("input.alignment.points[2]", [1, "a"], r"input\.alignment\.points\[2\]\[1\]"),
        ("input.alignment.template", KeyError, r"input\.alignment\.template: missing"),
        ("outputs", [], r"outputs: expected at least one item"),
        ("outputs[0].shape[1]", 0, r"outputs\[0\]\.shape\[1\]: expected an integer >= 1"),
        ("outputs[0].meaning", "", r"outputs\[0\]\.meaning"),
        ("postprocess.kind", "max", r"postprocess\.kind: expected one of"),
        ("postprocess.input", "probs", r"postprocess\.input: 'probs' is not an output"),
        ("outputs[0].shape", ["batch", 2, 3], r"postprocess: fuse_views needs output"),
        ("model.sha256", "abc", r"model\.sha256: expected 64 lowercase hex"),
        ("model.format", "tflite", r"model\.format"),
        (
            "training.metrics.mean_f1",
            "high",
            r"training\.metrics\.mean_f1: expected a finite number",
        ),
        ("training.data", KeyError, r"training\.data: missing"),
        ("format_version", "1", r"format_version: expected an integer"),
        ("format_version", 0, r"format_version: expected an integer >= 1"),
    ],
)
def test_invalid_fields_are_named(tmp_path, path, value, match):
    d = copy.deepcopy(_valid())
    _set(d, path, value)
    with pytest.raises(ManifestError, match=match):
        Manifest.from_dict(d)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="bad.json: " + match):
        Manifest.load(p)


def test_newer_version_is_refused(tmp_path):
    d = _valid()
    d["format_version"] = FORMAT_VERSION + 1
    d["something_new"] = {}
    p = tmp_path / "new.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ManifestVersionError, match="newer than this auperf reads"):
        Manifest.load(p)


def test_file_errors(tmp_path):
    with pytest.raises(ManifestError, match="no such manifest"):
        Manifest.load(tmp_path / "none.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ManifestError, match="x.json: not valid JSON"):
        Manifest.load(tmp_path / "x.json")


def test_verify_model(tmp_path):
    import hashlib

    (tmp_path / "m.onnx").write_bytes(b"model bytes")
    d = _valid()
    d["model"]["sha256"] = hashlib.sha256(b"model bytes").hexdigest()
    (tmp_path / "m.json").write_text(json.dumps(d))
    m = Manifest.load(tmp_path / "m.json")
    m.verify_model()
    (tmp_path / "m.onnx").write_bytes(b"other bytes")
    with pytest.raises(ManifestError, match="model.sha256"):
        m.verify_model()


def test_building_in_code_is_validated():
    m = Manifest.from_dict(_valid())
    with pytest.raises(ManifestError, match="thresholds"):
        Manifest(
            **{
                **{f: getattr(m, f) for f in m.__dataclass_fields__ if f != "source"},
                "thresholds": (0.5,),
            }
        )
