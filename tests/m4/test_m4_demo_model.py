"""The shipped M4 encoder (auperf/models/m4-demo): files, manifest, Features by default, and
onnxruntime against the torch encoder built from its safetensors weights."""

from __future__ import annotations

import numpy as np
import torch

import auperf
from auperf.features import DEFAULT_MODEL_DIR
from auperf.manifest import Manifest, sha256_file
from auperf.models import find_manifest


def test_files_and_manifest():
    m = Manifest.load(find_manifest(DEFAULT_MODEL_DIR))
    m.verify_model()
    assert (m.method, m.task, m.postprocess.kind) == ("M4", "features", "none")
    assert [o.name for o in m.outputs] == ["au_embedding", "pose_embedding"]
    weights = DEFAULT_MODEL_DIR / m.model.weights.file
    assert sha256_file(weights) == m.model.weights.sha256
    assert (DEFAULT_MODEL_DIR / "MODEL_CARD.md").is_file()
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert size < 4_000_000, size


def test_default_features_match_torch_on_rendered_faces():
    from auperf.nets.m4 import TCAEEncoder
    from auperf.synth import FaceRenderer, sample_params
    from training.common.checkpoint import load_weights
    from training.data.faces import align_images

    out = FaceRenderer(seed=11, size=128).render(sample_params(np.random.default_rng(11), 4))
    with auperf.Features() as fx:
        res = fx.extract(out.images, out.landmarks5)
        m = fx.manifest
    cfg = m.training.config
    enc = TCAEEncoder(cfg["backbone"], cfg["au_dim"], cfg["pose_dim"])
    load_weights(enc, DEFAULT_MODEL_DIR / m.model.weights.file)
    # The same crops as the pipeline, made here from the manifest: float warp, (p - 127.5) / 127.5.
    from auperf import align
    from auperf.ops import warp_faces

    mats = align.estimate_similarity(out.landmarks5, np.asarray(m.input.alignment.points))
    crops = warp_faces(
        out.images, mats, size=m.input.size, mean=[0.5] * 3, std=[0.5] * 3, layout="NCHW"
    )
    with torch.no_grad():
        phi, psi = enc.eval()(torch.from_numpy(np.asarray(crops)))
    assert res.au_embedding.shape == (4, cfg["au_dim"])
    np.testing.assert_allclose(res.au_embedding, phi.numpy(), atol=1e-4)
    np.testing.assert_allclose(res.pose_embedding, psi.numpy(), atol=1e-4)
    # uint8 crops aligned as in training (training.data.faces) agree up to their rounding.
    crops8 = align_images(out.images, out.landmarks5, m.input.size[0])
    with torch.no_grad():
        phi8, _ = enc(torch.from_numpy(crops8).float() / 127.5 - 1.0)
    assert np.abs(phi8.numpy() - res.au_embedding).max() < 0.05 * np.abs(phi.numpy()).max()
    # Different faces get different embeddings.
    assert np.abs(res.au_embedding[0] - res.au_embedding[1]).max() > 1e-3
