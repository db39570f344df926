"""Aligned face sets: synthetic faces from :mod:`auperf.synth` and real ones from
:mod:`auperf.datasets`, both aligned exactly as at inference.

Alignment is :func:`auperf.align.estimate_similarity` (5 points -> the template of the aligned
crop) followed by :func:`auperf.ops.warp_faces` (uint8, NCHW, RGB): the runtime's own
preprocessing, so training and serving cannot drift. The aligned crop has side
``A = round(S * 256 / 224)`` for network input ``S``; training cuts random ``S`` crops from it,
inference the centre one (the template that :func:`training.m0.export.default_alignment` writes to
the manifest is this template shifted by ``(A - S) / 2``).

Synthetic sets are cached as ``.npz`` files (no pickle) under ``cache_dir``, keyed by a hash of
every setting that changes their content, so repeated runs reuse them.

Example::

    faces = synth_faces(SynthConfig(train_identities=20), aligned=110, cache_dir="runs/cache")
    faces.images.shape          # (N, 3, 110, 110) uint8
    faces.labels_for([1, 12])   # (N, 2) int8 true occurrence of AU1 and AU12
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from auperf import __version__ as auperf_version
from auperf.errors import DatasetError, ParameterError, ShapeError

from .config import SynthConfig

__all__ = [
    "TRAIN",
    "VAL",
    "TEST",
    "AlignedFaces",
    "align_images",
    "synth_faces",
    "dataset_faces",
]

_log = logging.getLogger("auperf.training")
TRAIN, VAL, TEST = 0, 1, 2
_CACHE_FORMAT = 1


@dataclass
class AlignedFaces:
    """Aligned face crops with their labels and provenance (``N`` faces).

    Attributes:
        images: ``(N, 3, A, A)`` uint8 RGB aligned crops.
        au_ids: the AUs of ``occurrence`` columns.
        occurrence: ``(N, len(au_ids))`` int8 true labels, 1 / 0 / -1 unknown.
        subject: ``(N,)`` int64 identity (subject) index.
        split: ``(N,)`` int8: :data:`TRAIN`, :data:`VAL` or :data:`TEST`.
        features: ``(N, F)`` float32 appearance covariates for the weak-model noise (the
            renderer's identity and pose parameters; for datasets the landmark geometry).
        keys: ``(N,)`` sample names (for error messages and provenance).
    """

    images: np.ndarray
    au_ids: tuple[int, ...]
    occurrence: np.ndarray
    subject: np.ndarray
    split: np.ndarray
    features: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def labels_for(self, au_ids: Sequence[int]) -> np.ndarray:
        """True labels of the AUs ``au_ids`` in that order, ``(N, len(au_ids))`` int8.

        Raises:
            ParameterError: an AU is not labelled in this set (the AU and the available ones are
                named).
        """
        cols = []
        for a in au_ids:
            if int(a) not in self.au_ids:
                raise ParameterError(
                    f"au_ids: AU{a} is not labelled in this face set (it has {list(self.au_ids)})"
                )
            cols.append(self.au_ids.index(int(a)))
        return self.occurrence[:, cols]

    def indices(self, split: int) -> np.ndarray:
        """Indices of the faces of one split."""
        return np.flatnonzero(self.split == split)


def align_images(frames: np.ndarray, landmarks5: np.ndarray, aligned: int) -> np.ndarray:
    """Align faces exactly as at inference.

    Convention:
        ``frames`` ``(N, H, W, 3)`` uint8 RGB, one face per frame; ``landmarks5`` ``(N, 5, 2)`` in
        frame pixels, :mod:`auperf.align` point order, origin at the centre of the top-left
        pixel. The similarity maps each frame's points onto ``auperf.align.template(aligned)``
        (``src_to_dst``), and :func:`auperf.ops.warp_faces` samples the crop bilinearly with a
        black border.

    Returns:
        ``(N, 3, aligned, aligned)`` uint8 RGB crops.
    """
    from auperf import align
    from auperf.ops import warp_faces

    m = align.estimate_similarity(np.asarray(landmarks5, np.float64), align.template(aligned))
    return warp_faces(np.ascontiguousarray(frames), m, size=aligned, dtype="uint8", layout="NCHW")


# -- synthetic faces -------------------------------------------------------------------------


def _augment_preset(name: str):
    from auperf.synth import Augment

    if name == "off":
        return Augment.off()
    if name == "realistic":
        return Augment.realistic()
    return Augment(clutter=0.6, light=0.6, blur=0.25, noise=0.4, jpeg=0.3, occlusion=0.0)


def synth_cache_key(cfg: SynthConfig, aligned: int) -> str:
    """Hash of everything that changes a synthetic face set's content."""
    blob = json.dumps(
        {"format": _CACHE_FORMAT, "auperf": auperf_version, "aligned": aligned, **asdict(cfg)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _render_synth(cfg: SynthConfig, aligned: int, progress: bool) -> dict[str, np.ndarray]:
    from auperf import synth

    rng = np.random.default_rng(cfg.seed)
    n_ids = cfg.train_identities + cfg.val_identities + cfg.test_identities
    identities = synth.sample_identities(rng, n_ids)
    subject = np.repeat(np.arange(n_ids), cfg.faces_per_identity)
    split_of_id = np.repeat(
        np.array([TRAIN, VAL, TEST], np.int8),
        [cfg.train_identities, cfg.val_identities, cfg.test_identities],
    )
    params = synth.sample_params(rng, subject.size, identities=identities[subject])
    renderer = synth.FaceRenderer(
        seed=cfg.seed,
        size=cfg.render_size,
        framing=synth.Framing(
            jitter_scale=cfg.jitter_scale,
            jitter_shift=cfg.jitter_shift,
            jitter_roll_deg=cfg.jitter_roll_deg,
        ),
        augment=_augment_preset(cfg.augment),
    )
    n = subject.size
    images = np.empty((n, 3, aligned, aligned), np.uint8)
    occ = np.empty((n, len(synth.AU_IDS)), np.int8)
    inten = np.empty((n, len(synth.AU_IDS)), np.float32)
    pose = np.empty((n, 3), np.float32)
    with tqdm(total=n, desc="render + align", disable=not progress, leave=False) as bar:
        for s in range(0, n, cfg.batch):
            e = min(n, s + cfg.batch)
            out = renderer.render(params[s:e], identity=subject[s:e])
            images[s:e] = align_images(out.images, out.landmarks5, aligned)
            occ[s:e] = out.au_occurrence.astype(np.int8)
            inten[s:e] = out.au_intensity
            pose[s:e] = out.pose_deg
            bar.update(e - s)
    features = np.concatenate([params[:, synth.IDENTITY_SLICE], pose / 30.0], axis=1)
    return {
        "images": images,
        "au_ids": np.asarray(synth.AU_IDS, np.int64),
        "occurrence": occ,
        "intensity": inten,
        "subject": subject.astype(np.int64),
        "split": split_of_id[subject],
        "features": features.astype(np.float32),
        "keys": np.array([f"synth/id{i:05d}/face{k:06d}" for k, i in enumerate(subject)]),
    }


def synth_faces(
    cfg: SynthConfig, aligned: int, cache_dir: str | Path | None = None, progress: bool = True
) -> AlignedFaces:
    """Render, align and label synthetic faces, split by identity (cached).

    Identities ``[0, train)`` are the training split, the next ``val_identities`` validation and
    the last ``test_identities`` test: no identity is in two splits.

    Args:
        cfg: the synthetic-data settings.
        aligned: side of the aligned crops.
        cache_dir: folder of the cache (``None``: no cache).
        progress: show a progress bar while rendering.

    Returns:
        :class:`AlignedFaces` with the renderer's 15 AUs.
    """
    if aligned < 16:
        raise ShapeError(f"aligned: expected >= 16, got {aligned}")
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"synth-{synth_cache_key(cfg, aligned)}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                _log.info("synthetic faces: reusing %s", path)
                return _faces_from_arrays(arrays)
            except (OSError, ValueError, KeyError) as exc:
                _log.warning("synthetic faces: ignoring unreadable cache %s (%s)", path, exc)
    arrays = _render_synth(cfg, aligned, progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
        _log.info("synthetic faces: cached %d faces in %s", len(arrays["images"]), path)
    return _faces_from_arrays(arrays)


def _faces_from_arrays(a: dict[str, np.ndarray]) -> AlignedFaces:
    return AlignedFaces(
        images=a["images"],
        au_ids=tuple(int(x) for x in a["au_ids"]),
        occurrence=a["occurrence"].astype(np.int8),
        subject=a["subject"].astype(np.int64),
        split=a["split"].astype(np.int8),
        features=a["features"].astype(np.float32),
        keys=a["keys"].astype(str),
    )


# -- datasets ---------------------------------------------------------------------------------


def _split_subjects(
    subjects: Sequence[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, int]:
    names = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(names))
    n_val = int(round(val_fraction * len(names)))
    n_test = int(round(test_fraction * len(names)))
    if len(names) > 1 and val_fraction > 0:
        n_val = max(1, n_val)
    if n_val + n_test >= len(names) and (n_val or n_test):
        raise DatasetError(
            f"cannot hold out {n_val} validation and {n_test} test subjects from "
            f"{len(names)} subjects ({names[:5]}...); lower val_fraction / test_fraction"
        )
    out = {}
    for rank, i in enumerate(order):
        out[names[i]] = VAL if rank < n_val else TEST if rank < n_val + n_test else TRAIN
    return out


def dataset_faces(
    root: str | Path,
    au_ids: Sequence[int],
    aligned: int,
    *,
    layout: str | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.0,
    split_seed: int = 0,
    progress: bool = True,
    **reader_options: Any,
) -> AlignedFaces:
    """Read, align and label the faces of a dataset (BP4D, DISFA, EmotioNet layouts).

    Every sample needs 5-point landmarks, from the layout or from the ``auperf_landmarks.csv``
    sidecar (a face front end that finds them comes later). Subjects are split into train /
    validation / test; datasets without subjects count each sample as its own subject.

    Args:
        root: the dataset root.
        au_ids: the AUs to train on; each must be labelled by the dataset.
        aligned: side of the aligned crops.
        layout: the layout (default: detected).
        val_fraction, test_fraction, split_seed: the subject split.
        progress: show a progress bar.
        **reader_options: passed to :func:`auperf.datasets.open_dataset`.

    Raises:
        DatasetError: a sample without landmarks (named by its key), an AU the dataset does not
            label, or a split that leaves no training subject. Reader errors name file and row.
    """
    from auperf.datasets import open_dataset

    reader = open_dataset(root, layout, **reader_options)
    missing = [a for a in au_ids if int(a) not in reader.au_ids]
    if missing:
        raise DatasetError(
            f"AUs {missing} are not labelled by this dataset (it has {list(reader.au_ids)})",
            path=reader.root,
        )
    if len(reader) == 0:
        raise DatasetError("the dataset has no samples", path=reader.root)
    for s in reader:
        if s.landmarks is None:
            raise DatasetError(
                f"sample {s.key!r} has no 5-point landmarks; add them to the layout or to the "
                "auperf_landmarks.csv sidecar (faces are not detected automatically yet)",
                path=reader.root,
            )
    cols = [reader.au_ids.index(int(a)) for a in au_ids]
    occ = reader.occurrence_matrix()[:, cols].astype(np.int8)
    subjects = [s.subject if s.subject is not None else s.key for s in reader]
    split_of = _split_subjects(subjects, val_fraction, test_fraction, split_seed)
    subj_index = {name: i for i, name in enumerate(sorted(split_of))}
    n = len(reader)
    images = np.empty((n, 3, aligned, aligned), np.uint8)
    lms = reader.landmarks_array()
    try:
        for i, (_s, img) in enumerate(
            tqdm(reader.iter_images(), total=n, desc="align", disable=not progress, leave=False)
        ):
            images[i] = align_images(img[None], lms[i : i + 1], aligned)[0]
    finally:
        reader.close()
    # Appearance covariates of the weak-model noise: landmark geometry in the aligned frame.
    feats = (lms - lms.mean(axis=1, keepdims=True)).reshape(n, -1)
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-9)
    return AlignedFaces(
        images=images,
        au_ids=tuple(int(a) for a in au_ids),
        occurrence=occ,
        subject=np.array([subj_index[x] for x in subjects], np.int64),
        split=np.array([split_of[x] for x in subjects], np.int8),
        features=feats.astype(np.float32),
        keys=np.array([s.key for s in reader]),
    )
