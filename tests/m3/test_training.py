"""The M3 trainer end to end at toy size: render, train each network a few steps, export the
four folders, load them with both estimator backends."""

from __future__ import annotations

import numpy as np
import pytest

import auperf
from auperf.manifest import Manifest
from training.m3.config import DataConfig, ImitatorConfig, NetConfig
from training.m3.data import make_params, render_aligned
from training.m3.train import train_imitator, train_parser, train_predictor


def test_train_export_and_fit(tmp_path):
    pytest.importorskip("onnxscript", reason="the loss-and-gradient export needs onnxscript")
    from training.m3.export import export_all

    s = 32
    rng = np.random.default_rng(0)
    x = make_params(rng, 12, 0.5)
    images, labels, mats = render_aligned(x, s, masks=True)
    assert images.shape == (12, s, s, 3) and labels.shape == (12, s, s) and mats.shape == (12, 2, 3)
    assert labels.max() <= 10 and (labels == 1).any()
    data = {"images": images, "labels": labels, "params": x.astype(np.float32)}
    cfg = NetConfig(width=8, steps=3, batch_size=4)
    parser, hp = train_parser(data, s, cfg)
    imitator, hi = train_imitator(
        data, s, ImitatorConfig(width=16, min_width=8, steps=3, batch_size=4, arch="upconv"), parser
    )
    assert imitator.arch == "upconv"  # the shipped imitator is "deconv": both export
    predictor, hq = train_predictor(data, s, cfg)
    assert [h[-1]["step"] for h in (hp, hi, hq)] == [2, 2, 2]
    paths = export_all(imitator, parser, predictor, tmp_path, data="toy", atol=1e-4)
    fit_manifest = Manifest.load(paths["fit"])
    assert fit_manifest.training.metrics["max_abs_err_vs_autograd"] <= 1e-5
    assert DataConfig().size == 64
    frames = np.ascontiguousarray(images[:3])
    est = auperf.Estimator(tmp_path, backend="torch")
    assert est._b.imitator.arch == "upconv"  # the manifest carries the stage design
    a = est.fit(frames, iterations=4, tolerance=0.0)
    b = auperf.Estimator(tmp_path, backend="onnxruntime").fit(frames, iterations=4, tolerance=0.0)
    np.testing.assert_allclose(a.params, b.params, atol=1e-4)
