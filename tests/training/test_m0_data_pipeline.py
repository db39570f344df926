"""M0 data pipeline: synthetic faces (aligned as at inference, cached, split by identity),
dataset adapter, augmentations, noisy labels and batches. Tiny inputs throughout."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from auperf import align, synth
from auperf.datasets import BP4DWriter
from auperf.errors import DatasetError, ParameterError
from training.common.config import ConfigError, TrainConfig
from training.data import (
    TEST,
    TRAIN,
    VAL,
    SynthConfig,
    align_images,
    augment_batch,
    build_m0_data,
    centre_crop,
    dataset_faces,
    make_noisy_labels,
    parse_data_config,
    random_crop,
    synth_faces,
)
from training.m0.config import M0Config
from training.m0.losses import au_balance_weights

TINY = SynthConfig(
    render_size=64,
    train_identities=6,
    val_identities=2,
    test_identities=2,
    faces_per_identity=3,
    augment="light",
)
AUS = [1, 4, 12, 25]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def faces(cache):
    return synth_faces(TINY, 36, cache, progress=False)


def _cfg(cache, **data) -> M0Config:
    d = {"synth": dataclasses.asdict(TINY), "cache_dir": str(cache), "aligned_size": 36, **data}
    return M0Config(
        au_ids=AUS,
        au_names=[f"AU{a}" for a in AUS],
        backbone="smallnet",
        input_size=32,
        data=d,
        train=TrainConfig(batch_size=8, progress=False),
    )


def test_synth_faces_split_by_identity_and_cached(faces, cache):
    assert faces.images.shape == (30, 3, 36, 36) and faces.images.dtype == np.uint8
    assert faces.au_ids == synth.AU_IDS
    ids = {s: set(faces.subject[faces.split == s]) for s in (TRAIN, VAL, TEST)}
    assert len(ids[TRAIN]) == 6 and len(ids[VAL]) == 2 and len(ids[TEST]) == 2
    assert not (ids[TRAIN] & ids[VAL] or ids[TRAIN] & ids[TEST] or ids[VAL] & ids[TEST])
    files = list(cache.glob("synth-*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = synth_faces(TINY, 36, cache, progress=False)  # read back, not re-rendered
    assert files[0].stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.images, faces.images)
    np.testing.assert_array_equal(again.occurrence, faces.occurrence)
    other = dataclasses.replace(TINY, seed=1)
    assert synth_faces(other, 36, cache, progress=False).images.shape == faces.images.shape
    assert len(list(cache.glob("synth-*.npz"))) == 2  # a different config, a different entry


def test_alignment_matches_cv2_oracle():
    r = synth.FaceRenderer(seed=3, size=64, framing=synth.Framing(jitter_roll_deg=15))
    out = r.render(synth.sample_params(np.random.default_rng(3), 2))
    got = align_images(out.images, out.landmarks5, 40)
    m = align.estimate_similarity(out.landmarks5, align.template(40))
    for i in range(2):
        ref = cv2.warpAffine(out.images[i], m[i], (40, 40), flags=cv2.INTER_LINEAR)
        diff = np.abs(got[i].transpose(1, 2, 0).astype(int) - ref.astype(int))
        assert np.median(diff) <= 1 and diff.max() <= 3


def test_labels_for_unknown_au(faces):
    np.testing.assert_array_equal(faces.labels_for([12]), faces.occurrence[:, [7]])
    with pytest.raises(ParameterError, match="AU43"):
        faces.labels_for([43])


def test_augmentations_seeded_and_shaped():
    x = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8)
    norm = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    a = augment_batch(x, 8, torch.Generator().manual_seed(1), **norm)
    b = augment_batch(x, 8, torch.Generator().manual_seed(1), **norm)
    assert a.shape == (5, 3, 8, 8) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    # every crop is a window of its own image
    c = random_crop(x, 8, torch.Generator().manual_seed(2))
    for i in range(5):
        wins = x[i].unfold(1, 8, 1).unfold(2, 8, 1)  # (3, 5, 5, 8, 8)
        assert (wins == c[i][:, None, None]).flatten(3).all(-1).all(0).any()
    torch.testing.assert_close(centre_crop(x, 8), x[:, :, 2:10, 2:10])
    grey = augment_batch(
        x, 8, torch.Generator().manual_seed(0), flip_p=0.0, grayscale_p=1.0, **norm
    )
    torch.testing.assert_close(grey[:, 0], grey[:, 2])
    flipped = augment_batch(
        x, 12, torch.Generator().manual_seed(0), flip_p=1.0, grayscale_p=0.0, **norm
    )
    torch.testing.assert_close(flipped, x.flip(-1).float())


def test_noisy_labels_rates_and_true_labels_kept():
    rng = np.random.default_rng(0)
    y = (rng.random((4000, 3)) < 0.3).astype(np.int8)
    feats = rng.standard_normal((4000, 5))
    for kind in ("flip", "weak_model"):
        noisy = make_noisy_labels(y, feats, kind, 0.2, seed=1)
        assert abs((noisy != y).mean() - 0.2) < 0.03
    np.testing.assert_array_equal(make_noisy_labels(y, feats, "none", 0.4, 1), y)
    with pytest.raises(ParameterError, match="kind"):
        make_noisy_labels(y, feats, "bogus", 0.2, 1)


def test_build_m0_data_batches(cache):
    data = build_m0_data(_cfg(cache, noise="flip", noise_rate=0.4, accurate_fraction=0.5))
    assert data.accurate.size == 9 and data.inaccurate.size == 9  # 3 + 3 identities
    assert set(data.faces.subject[data.accurate]).isdisjoint(data.faces.subject[data.inaccurate])
    np.testing.assert_array_equal(data.given_labels[data.accurate], data.true_labels[data.accurate])
    assert (data.given_labels[data.inaccurate] != data.true_labels[data.inaccurate]).any()
    batches = list(data.train_batches("m0")(1, torch.Generator().manual_seed(0)))
    assert len(batches) == 3 and batches[0]["image"].shape == (8, 2, 3, 32, 32)
    clean = torch.cat([b["clean_labels"] for b in batches])
    noisy = torch.cat([b["noisy_labels"] for b in batches])
    assert ((clean >= 0).all(1) ^ (noisy >= 0).all(1)).all()  # each face in exactly one set
    assert int((clean >= 0).all(1).sum()) == 9
    merged = list(data.train_batches("merged", two_views=False)(1, torch.Generator()))
    assert "noisy_labels" not in merged[0] and merged[0]["image"].shape == (8, 3, 32, 32)
    assert all((b["clean_labels"] >= 0).all() for b in merged)
    clean_m, noisy_m = data.train_label_matrices("m0")
    assert au_balance_weights(torch.from_numpy(clean_m)).shape == (4,)
    ev = list(data.eval_batches("val"))
    assert sum(len(b["image"]) for b in ev) == data.val.size
    torch.testing.assert_close(
        torch.cat([b["clean_labels"] for b in ev]),
        torch.from_numpy(data.true_labels[data.val].astype(np.float32)),
    )


def test_data_config_errors():
    with pytest.raises(ConfigError, match=r"data\.synth\.faces_per_idenity"):
        parse_data_config({"synth": {"faces_per_idenity": 3}})
    with pytest.raises(ConfigError, match=r"data\.noise"):
        parse_data_config({"noise": "gaussian"})
    with pytest.raises(ConfigError, match=r"data\.synth\.augment"):
        parse_data_config({"synth": {"augment": "heavy"}})


def _bp4d(root, landmarks: bool):
    r = synth.FaceRenderer(seed=0, size=64)
    x = synth.sample_params(np.random.default_rng(0), 8)
    out = r.render(x)
    aus = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
    cols = [synth.AU_IDS.index(a) for a in aus]
    with BP4DWriter(root, au_ids=aus) as w:
        for i in range(8):
            w.add(
                out.images[i],
                subject=f"F00{i // 2}",
                task="T1",
                frame=i,
                occurrence=out.au_occurrence[i, cols].astype(int),
                landmarks=out.landmarks5[i] if landmarks else None,
            )
    return out


def test_dataset_faces_bp4d(tmp_path):
    out = _bp4d(tmp_path / "bp4d", landmarks=True)
    f = dataset_faces(tmp_path / "bp4d", [1, 12], 36, val_fraction=0.25, progress=False)
    assert f.images.shape == (8, 3, 36, 36)
    ref = align_images(out.images, out.landmarks5, 36)  # the layout stores JPEG: lossy
    assert np.abs(f.images.astype(int) - ref.astype(int)).mean() < 4
    np.testing.assert_array_equal(f.occurrence, out.au_occurrence[:, [0, 7]].astype(np.int8))
    assert set(f.split.tolist()) == {TRAIN, VAL}
    for s in set(f.subject.tolist()):  # subjects are not split across train and val
        assert len(set(f.split[f.subject == s].tolist())) == 1
    with pytest.raises(DatasetError, match="AUs \\[25\\]"):
        dataset_faces(tmp_path / "bp4d", [1, 25], 36, progress=False)


def test_dataset_faces_without_landmarks_names_the_sample(tmp_path):
    _bp4d(tmp_path / "bp4d", landmarks=False)
    with pytest.raises(DatasetError, match=r"sample 'Sequences/F000/T1/0000.jpg' has no 5-point"):
        dataset_faces(tmp_path / "bp4d", [1, 12], 36, progress=False)
