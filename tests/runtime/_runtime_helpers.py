"""Helpers of the runtime tests: export of tiny M0 models, crops made by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

S = 64
AU_IDS = [1, 4, 6, 12]
AU_NAMES = ["inner brow raiser", "brow lowerer", "cheek raiser", "lip corner puller"]


def export_tiny(out: Path, seed: int, *, config: dict | None, noisy_heads: bool = True) -> Path:
    import torch

    from auperf.nets.m0 import M0Net
    from training.m0.export import export_m0

    torch.manual_seed(seed)
    net = M0Net(len(AU_IDS), "smallnet", noisy_heads=noisy_heads)
    # Batch-norm statistics of real face crops, so that different faces give clearly
    # different logits (an untrained net with default statistics maps all faces alike).
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    calib = torch.from_numpy(calibration_crops(seed))
    with torch.no_grad():
        for _ in range(2):
            net(calib)
    net.eval()
    res = export_m0(
        net,
        out,
        name="tiny",
        au_ids=AU_IDS,
        au_names=AU_NAMES,
        input_size=S,
        training_data="random tensors",
        thresholds=[0.5, 0.45, 0.55, 0.5],
        config=config,
    )
    return res.manifest_path


def calibration_crops(seed: int) -> np.ndarray:
    from auperf import align
    from auperf.ops import warp_faces
    from auperf.synth import FaceRenderer, sample_params
    from training.m0.config import IMAGENET_MEAN, IMAGENET_STD
    from training.m0.export import default_alignment

    out = FaceRenderer(seed=seed + 100, size=96).render(
        sample_params(np.random.default_rng(seed + 100), 24)
    )
    tmpl = np.asarray(default_alignment(S).points)
    m = align.estimate_similarity(out.landmarks5, tmpl)
    return warp_faces(
        out.images,
        m,
        size=S,
        mean=[v / 255.0 for v in IMAGENET_MEAN],
        std=[v / 255.0 for v in IMAGENET_STD],
    )


def crops_like_manifest(manifest, images, landmarks5, frame_index=None):
    """The model input made by hand from the manifest (align + warp)."""
    from auperf import align
    from auperf.ops import warp_faces

    inp = manifest.input
    m = align.estimate_similarity(landmarks5, np.asarray(inp.alignment.points))
    return warp_faces(
        images,
        m,
        frame_index,
        size=inp.size,
        mean=[v / 255.0 for v in inp.mean],
        std=[v / 255.0 for v in inp.std],
        output_order=inp.colour_order,
        layout=inp.layout,
        dtype=inp.dtype,
    )
