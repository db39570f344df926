"""M1 network, a tiny training run (smoke + exact resume), ONNX export and the Detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.errors import ParameterError, ShapeError
from auperf.nets.m1 import M1Inference, M1Net
from training.common.config import ConfigError, config_from_dict
from training.m1.config import M1Config

AUS = [1, 2, 4, 12, 15, 25]


def _tiny_cfg(tmp_path, **train) -> M1Config:
    return config_from_dict(
        M1Config,
        {
            "au_ids": AUS,
            "au_names": [f"AU{a}" for a in AUS],
            "input_size": 32,
            "gen_size": 32,
            "embed_dim": 8,
            "node_dim": 4,
            "width": 4,
            "gen_width": 4,
            "landmark_grid": 4,
            "data": {
                "render_size": 64,
                "train_identities": 3,
                "val_identities": 2,
                "test_identities": 2,
                "frames_per_identity": 10,
                "fps": 2.0,
                "event_rate": 1.5,
                "cache_dir": str(tmp_path / "cache"),
            },
            "sampler": {"far_s": 2.0, "near_s": 0.5},
            "train": {
                "iterations": 4,
                "chunk": 2,
                "pairs_per_batch": 2,
                "out_dir": str(tmp_path / "run"),
                "progress": False,
                **train,
            },
        },
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from training.m1.train import load_faces

    tmp = tmp_path_factory.mktemp("m1")
    cfg = _tiny_cfg(tmp)
    return tmp, load_faces(cfg)


def test_net_shapes_and_errors(rng):
    adj = np.eye(3, dtype=np.float32)
    net = M1Net(3, adj, embed_dim=8, node_dim=4, width=4).eval()
    x = torch.randn(2, 3, 32, 32)
    out = net(x)
    assert out.logits.shape == (2, 3) and out.e.shape == (2, 3, 8)
    torch.testing.assert_close(out.a, out.e.sum(dim=1))
    assert out.z.shape == (2, 8)
    torch.testing.assert_close(M1Inference(net)(x)[:, 0], out.logits)
    with pytest.raises(ShapeError, match="adjacency"):
        M1Net(3, np.eye(2))
    with pytest.raises(ParameterError, match="num_aus"):
        M1Net(0, np.eye(0))
    with pytest.raises(ShapeError, match="x"):
        net(torch.randn(2, 1, 32, 32))


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="train.variant"):
        _tiny_cfg(tmp_path, variant="nope")
    with pytest.raises(ConfigError, match="loss.tau_idd"):
        config_from_dict(M1Config, {"loss": {"tau_idd": 0.1}})


def test_data_landmarks_lie_on_the_face(tiny):
    _, faces = tiny
    assert faces.images.shape[1:] == (3, 32, 32) and faces.landmarks.shape[1:] == (49, 2)
    # aligned crops: the landmarks are inside the crop and the eyes (points 19-30) above the mouth
    assert (faces.landmarks > -1).all() and (faces.landmarks < 33).all()
    assert faces.landmarks[:, 19:31, 1].mean() < faces.landmarks[:, 31:, 1].mean()
    assert set(np.unique(faces.split)) == {0, 1, 2}
    for i in np.unique(faces.identity):
        assert len(np.unique(faces.split[faces.identity == i])) == 1


@pytest.mark.parametrize("variant", ["m1", "no_contrast_adv", "bce"])
def test_smoke_and_exact_resume(tiny, variant):
    from training.m1.train import train_m1

    tmp, faces = tiny
    cfg_a = _tiny_cfg(tmp / f"a-{variant}", variant=variant)
    cfg_b = _tiny_cfg(tmp / f"b-{variant}", variant=variant)
    full = train_m1(cfg_a, faces)
    part = train_m1(cfg_b, faces, max_steps=2)
    assert part["step"] == 2
    rest = train_m1(cfg_b, faces)  # resumes from the step-2 checkpoint
    assert full["step"] == rest["step"] == 4
    sa, sb = full["model"].state_dict(), rest["model"].state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
    import json

    lines = (tmp / f"a-{variant}" / "run" / "metrics.jsonl").read_text().splitlines()
    logs = [json.loads(s) for s in lines]
    assert all(np.isfinite(v) for r in logs for v in r.values())
    if variant == "m1":
        assert {"id", "au", "adv_id", "adv_geo", "cycle", "emb", "gan"} <= set(logs[-1])
    if variant == "no_contrast_adv":
        assert not {"id", "au", "adv_id", "adv_geo"} & set(logs[-1])
    if variant == "bce":
        assert set(logs[-1]) == {"step", "bce", "total"}


def test_export_and_detector_match_torch(tiny, tmp_path):
    from auperf import Detector, align, synth
    from auperf.manifest import Manifest
    from auperf.ops import warp_faces
    from training.m1.export import MEAN, STD, export_m1, load_m1_weights
    from training.m1.train import train_m1

    tmp, faces = tiny
    cfg = _tiny_cfg(tmp / "export")
    net = train_m1(cfg, faces)["model"].net
    ex = export_m1(
        net,
        tmp_path,
        name="m1-tiny",
        au_ids=AUS,
        au_names=[f"AU{a}" for a in AUS],
        input_size=32,
        training_data="tiny",
        thresholds=[0.4] * len(AUS),
    )
    assert ex.max_abs_diff <= 1e-4
    man = Manifest.load(ex.manifest_path)
    assert man.method == "M1" and man.outputs[0].shape == ("batch", 1, len(AUS))
    again = load_m1_weights(ex.weights_path)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(again(x).logits, net.eval()(x).logits)

    fr = synth.FaceRenderer(seed=5, size=64).render(
        synth.sample_params(np.random.default_rng(2), 5)
    )
    with Detector(tmp_path, backend="onnxruntime") as det:
        res = det.detect(fr.images, landmarks=fr.landmarks5)
    m = align.estimate_similarity(np.asarray(fr.landmarks5, np.float64), align.template(32))
    crops = warp_faces(
        np.ascontiguousarray(fr.images),
        m,
        size=32,
        mean=[v / 255 for v in MEAN],
        std=[v / 255 for v in STD],
        dtype="float32",
        layout="NCHW",
    )
    with torch.no_grad():
        ref = torch.sigmoid(net.eval()(torch.as_tensor(np.asarray(crops))).logits).numpy()
    np.testing.assert_allclose(res.probabilities, ref, atol=1e-4)
    np.testing.assert_array_equal(res.active, ref >= 0.4)
    with pytest.raises(ParameterError, match="au_ids"):
        export_m1(
            net,
            tmp_path,
            name="x",
            au_ids=AUS[:2],
            au_names=AUS[:2],
            input_size=32,
            training_data="tiny",
        )
