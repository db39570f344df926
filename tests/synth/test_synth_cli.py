"""Contact sheet CLI and the public API surface."""

from __future__ import annotations

import cv2

import auperf.synth as synth
from auperf.synth.__main__ import main


def test_sheet_cli(tmp_path):
    out = tmp_path / "sheet.png"
    assert main(["--sheet", str(out), "--tile", "48", "--columns", "8"]) == 0
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == 8 * 48 and img.shape[0] > 5 * 48


def test_public_api():
    for name in (
        "FaceRenderer",
        "RenderResult",
        "Augment",
        "Framing",
        "POSE_DIMS",
        "EXPRESSION_NAMES",
        "IDENTITY_NAMES",
        "PARAM_DIM",
        "POSE_SLICE",
        "EXPRESSION_SLICE",
        "IDENTITY_SLICE",
        "AU_IDS",
        "AU_NAMES",
        "MASK_CLASSES",
        "au_from_expression",
        "expression_from_au",
        "expression_category",
        "sample_params",
        "sample_identities",
        "sample_aus",
        "sample_expressions",
        "sample_category",
        "render_sequence",
        "render_multiface",
        "contact_sheet",
    ):
        assert name in synth.__all__, name
        assert hasattr(synth, name), name
