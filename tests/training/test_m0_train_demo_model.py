"""The shipped demo model: manifest, checksum, size, and a behaviour check on rendered faces
(preprocessed exactly as the manifest says: 5-point similarity to its template, warp_faces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from auperf import align, synth
from auperf.manifest import Manifest
from auperf.ops import warp_faces

DEMO = Path(__file__).resolve().parents[2] / "auperf" / "models" / "demo"


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    files = sorted(DEMO.glob("*.json"))
    assert len(files) == 1, f"expected one manifest in {DEMO}, found {files}"
    return Manifest.load(files[0])


def test_demo_manifest_and_files(manifest):
    manifest.verify_model()  # sha256 of the ONNX file
    assert manifest.method == "M0" and manifest.task == "au_occurrence"
    assert 12 in manifest.au_ids
    total = sum(p.stat().st_size for p in DEMO.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024
    assert (DEMO / "MODEL_CARD.md").is_file()


def _probabilities(manifest: Manifest, images: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    inp = manifest.input
    m = align.estimate_similarity(landmarks5, np.asarray(inp.alignment.points))
    x = warp_faces(
        images,
        m,
        size=inp.size,
        mean=[v / 255.0 for v in inp.mean],
        std=[v / 255.0 for v in inp.std],
        output_order=inp.colour_order,
        layout=inp.layout,
    )
    sess = ort.InferenceSession(str(manifest.model_path()), providers=["CPUExecutionProvider"])
    logits = sess.run([manifest.outputs[0].name], {inp.name: x})[0]
    return 1.0 / (1.0 + np.exp(-logits.mean(axis=1)))


def test_demo_smile_raises_au12(manifest):
    rng = np.random.default_rng(2024)  # identities the model never saw (other seed)
    n = 8
    neutral = synth.sample_params(rng, n, expression="neutral", pose="frontal")
    smile = neutral.copy()
    smile[:, synth.EXPRESSION_SLICE.start + synth.AU_TO_EXPRESSION[synth.AU_IDS.index(12)]] = 1.0
    r = synth.FaceRenderer(seed=7, size=128)
    out_n, out_s = r.render(neutral), r.render(smile)
    assert out_s.au_occurrence[:, synth.AU_IDS.index(12)].all()
    k = manifest.au_ids.index(12)
    p_n = _probabilities(manifest, out_n.images, out_n.landmarks5)[:, k]
    p_s = _probabilities(manifest, out_s.images, out_s.landmarks5)[:, k]
    # same identity, same pose and light: only the smile differs
    assert (p_s > p_n).all(), (p_n, p_s)
    assert np.median(p_s - p_n) > 0.1, (p_n, p_s)
