"""The leakage probes of the M1 experiment on features with known content."""

from __future__ import annotations

import numpy as np

from training.experiments.m1_identity import au_probe, confound_fpr, identity_probe
from training.m1.data import VideoFaces


def _faces(rng, n_ids=5, frames=40, c=3):
    ident = np.repeat(np.arange(n_ids), frames)
    labels = (rng.random((n_ids * frames, c)) < 0.4).astype(np.int8)
    n = len(ident)
    return VideoFaces(
        images=np.zeros((n, 3, 4, 4), np.uint8),
        labels=labels,
        identity=ident,
        time=np.tile(np.arange(frames) / 4.0, n_ids),
        split=np.full(n, 2, np.int8),
        landmarks=np.zeros((n, 49, 2), np.float32),
        params=rng.random((n, 80)).astype(np.float32),
    )


def test_identity_probe_sees_identity_and_not_noise(rng):
    f = _faces(rng)
    onehot = np.eye(5)[f.identity] + 0.1 * rng.normal(size=(len(f), 5))
    assert identity_probe(onehot, f) > 0.95
    noise = rng.normal(size=(len(f), 5))
    assert identity_probe(noise, f) < 0.45  # chance 0.2


def test_au_probe_sees_labels_and_not_noise(rng):
    f = _faces(rng)
    informative = f.labels + 0.2 * rng.normal(size=f.labels.shape)
    assert au_probe(informative, f) > 0.95
    assert au_probe(rng.normal(size=(len(f), 3)), f) < 0.65  # chance 0.5


def test_confound_fpr_counts_by_hand(rng):
    from auperf.synth import identity_index

    f = _faces(rng, n_ids=4, frames=10, c=1)
    col = identity_index("brow_height")
    for i, v in enumerate([0.1, 0.2, 0.8, 0.9]):  # identities 0, 1 have low brows
        f.params[f.identity == i, col] = v
    f.labels[:] = 0
    probs = np.where(f.identity < 2, 0.9, 0.1)[:, None]
    out = confound_fpr(probs, np.array([0.5]), f, [4])
    assert out["AU4"]["confounded"] == 1.0 and out["AU4"]["other"] == 0.0
