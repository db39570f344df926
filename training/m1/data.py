"""M1 data: identity-labelled synthetic videos, aligned, with 49 landmarks; the pair sampler.

Videos come from :func:`auperf.synth.render_sequence` (one per identity, the identity dims
drawn by :func:`auperf.synth.sample_identities`), and every frame is aligned exactly as at
inference (:func:`training.data.faces.align_images`: 5-point similarity to
``auperf.align.template(S)`` + :func:`auperf.ops.warp_faces`). The landmarks go through the same
similarity.

The 49 landmarks are the iBUG-68 points without the 17 jaw points (0-16) and without the two
inner-mouth corners (60 and 64), which nearly coincide with the outer ones (48, 54): brows
17-26, nose 27-35, eyes 36-47, outer lip 48-59, inner lip 61-63 and 65-67, in that order
(:data:`LANDMARKS_49`). Coordinates are aligned-crop pixels, ``x`` right, ``y`` down, origin at
the centre of the top-left pixel.

:class:`PairSampler` draws training quadruples ``(a, a-, p, p-)`` (see its docstring for the
rules).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from auperf import __version__ as auperf_version
from auperf.errors import ParameterError, ShapeError, ValueRangeError

from .config import M1DataConfig, SamplerConfig

__all__ = [
    "LANDMARKS_49",
    "VideoFaces",
    "render_video_faces",
    "landmark_cells",
    "PairSampler",
    "TRAIN",
    "VAL",
    "TEST",
]

_log = logging.getLogger("auperf.training")
TRAIN, VAL, TEST = 0, 1, 2
#: iBUG-68 indices of the 49 inner landmarks, in order.
LANDMARKS_49 = tuple([*range(17, 60), 61, 62, 63, 65, 66, 67])
_CACHE_FORMAT = 1


@dataclass
class VideoFaces:
    """Aligned frames of identity-labelled videos (``N`` frames).

    Attributes:
        images: ``(N, 3, S, S)`` uint8 RGB aligned crops.
        labels: ``(N, C)`` int8 AU occurrence (the run's AUs), 1 / 0.
        identity: ``(N,)`` int64 identity (one video per identity).
        time: ``(N,)`` float64 seconds from the video's first frame.
        split: ``(N,)`` int8 :data:`TRAIN` / :data:`VAL` / :data:`TEST` (by identity).
        landmarks: ``(N, 49, 2)`` float32 aligned-crop pixels (:data:`LANDMARKS_49`).
        params: ``(N, P)`` float32 renderer parameter vectors (identity dims included).
    """

    images: np.ndarray
    labels: np.ndarray
    identity: np.ndarray
    time: np.ndarray
    split: np.ndarray
    landmarks: np.ndarray
    params: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, index: np.ndarray) -> VideoFaces:
        """The frames at ``index`` (a new object; arrays are copied by fancy indexing)."""
        return VideoFaces(*(getattr(self, f)[index] for f in self.__dataclass_fields__))


def _cache_key(cfg: M1DataConfig, au_ids: list[int], size: int) -> str:
    d = asdict(cfg)
    d.pop("cache_dir")
    blob = json.dumps(
        {"format": _CACHE_FORMAT, "auperf": auperf_version, "aus": list(au_ids), "size": size, **d},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def render_video_faces(
    cfg: M1DataConfig, au_ids: list[int], size: int, progress: bool = False
) -> VideoFaces:
    """Render, align and label one video per identity (cached in ``cfg.cache_dir``).

    Args:
        cfg: the data settings.
        au_ids: renderer AUs to label, in column order.
        size: side ``S`` of the aligned crops.
        progress: log per-split progress.

    Raises:
        ParameterError: an AU the renderer does not label.
    """
    from auperf import synth
    from training.data.faces import align_images

    missing = [a for a in au_ids if int(a) not in synth.AU_IDS]
    if missing:
        raise ParameterError(f"au_ids: AUs {missing} are not rendered (have {synth.AU_IDS})")
    path = None
    if cfg.cache_dir:
        path = Path(cfg.cache_dir) / f"m1-video-{_cache_key(cfg, au_ids, size)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return VideoFaces(**{k: z[k] for k in z.files})
    from auperf import align

    n_ids = cfg.train_identities + cfg.val_identities + cfg.test_identities
    rng = np.random.default_rng(cfg.seed)
    identities = synth.sample_identities(rng, n_ids)
    renderer = synth.FaceRenderer(seed=cfg.seed, size=cfg.render_size)
    augment = (
        synth.Augment.off()
        if cfg.augment == "off"
        else synth.Augment(clutter=0.6, light=0.6, blur=0.25, noise=0.4, jpeg=0.3, occlusion=0.0)
    )
    cols = [synth.AU_IDS.index(int(a)) for a in au_ids]
    out: dict[str, list[np.ndarray]] = {k: [] for k in VideoFaces.__dataclass_fields__}
    split_of = np.repeat(
        np.array([TRAIN, VAL, TEST], np.int8),
        [cfg.train_identities, cfg.val_identities, cfg.test_identities],
    )
    for i in range(n_ids):
        seq = synth.render_sequence(
            renderer,
            cfg.frames_per_identity,
            fps=cfg.fps,
            seed=cfg.seed,
            track_id=i,
            identity=identities[i],
            augment=augment,
            event_rate=cfg.event_rate,
        )
        fr = seq.frames
        m = align.estimate_similarity(np.asarray(fr.landmarks5, np.float64), align.template(size))
        lm = np.asarray(fr.landmarks68, np.float64)[:, LANDMARKS_49]
        lm = np.einsum("nij,nkj->nki", m[:, :, :2], lm) + m[:, None, :, 2]
        out["images"].append(align_images(fr.images, fr.landmarks5, size))
        out["labels"].append(np.asarray(fr.au_occurrence)[:, cols].astype(np.int8))
        out["identity"].append(np.full(len(seq.times), i, np.int64))
        out["time"].append(np.asarray(seq.times, np.float64))
        out["split"].append(np.full(len(seq.times), split_of[i], np.int8))
        out["landmarks"].append(lm.astype(np.float32))
        out["params"].append(np.asarray(fr.params, np.float32))
        if progress and (i + 1) % 20 == 0:
            _log.info("m1 data: rendered %d / %d videos", i + 1, n_ids)
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return VideoFaces(**arrays)


def landmark_cells(landmarks: np.ndarray, size: int, grid: int) -> np.ndarray:
    """Class index of each landmark on a ``grid x grid`` partition of the ``size`` crop.

    Convention: pixel centres at integers, so the crop spans ``[-0.5, size - 0.5]``; cell
    ``(gx, gy) = floor((p + 0.5) * grid / size)`` clipped to ``[0, grid - 1]``, index
    ``gy * grid + gx`` (row-major).

    Returns:
        ``(..., )`` int64 indices, the shape of ``landmarks`` without its last axis.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape[-1] != 2:
        raise ShapeError(f"landmarks: expected a last axis of 2, got shape {lm.shape}")
    g = np.clip(np.floor((lm + 0.5) * grid / size), 0, grid - 1).astype(np.int64)
    return g[..., 1] * grid + g[..., 0]


class PairSampler:
    """Draws quadruples ``(a, a-, p, p-)`` of frame indices from identity-labelled videos.

    Rules (``y`` the AU label vectors, ``t`` times, ``id`` identities; ``shared(i, j)`` the
    number of AUs active in both):

    - hard negative ``n`` of ``i``: ``id[n] == id[i]``, ``y[n] != y[i]``, and either
      ``shared(i, n) == 0`` or ``|t[n] - t[i]| > far_s``;
    - hard positive ``p`` of ``i``: either *temporal*: ``id[p] == id[i]``, ``p != i``,
      ``|t[p] - t[i]| <= near_s``; or *cross-identity*: ``id[p] != id[i]`` and, with ``k`` the
      anchor's number of active AUs, ``k == 0``: ``p`` has no active AU; ``k == 1``: ``p`` has
      that AU; ``k >= 2``: ``shared(i, p) >= 2`` and ``shared(i, p) / k >= min_shared_ratio``;
    - ``a`` is drawn uniformly among anchors that have a hard negative and a hard positive that
      itself has a hard negative; ``p`` is temporal with probability ``temporal_positive_p``
      (when both kinds exist); ``a-`` and ``p-`` uniformly among the candidates.

    Args:
        labels: ``(N, C)`` labels in {0, 1}.
        identity: ``(N,)`` identities.
        time: ``(N,)`` seconds.
        cfg: the sampler constants.

    Raises:
        ShapeError: inconsistent shapes.
        ValueRangeError: labels outside {0, 1}, or no valid anchor at all.
    """

    def __init__(
        self, labels: np.ndarray, identity: np.ndarray, time: np.ndarray, cfg: SamplerConfig
    ) -> None:
        y = np.asarray(labels)
        ident = np.asarray(identity)
        t = np.asarray(time, np.float64)
        if y.ndim != 2 or ident.shape != (y.shape[0],) or t.shape != (y.shape[0],):
            raise ShapeError(
                f"labels, identity, time: expected (N, C), (N,), (N,), got {y.shape}, "
                f"{ident.shape}, {t.shape}"
            )
        if not np.isin(y, (0, 1)).all():
            raise ValueRangeError(f"labels: expected 0 or 1, got values {np.unique(y).tolist()}")
        self.cfg = cfg
        self.labels, self.identity, self.time = y.astype(np.int64), ident, t
        self.neg, self.pos_temporal, self.pos_cross = self.candidate_masks(y, ident, t, cfg)
        has_neg = self.neg.any(axis=1)
        ok_pos_t = (self.pos_temporal & has_neg[None, :]).any(axis=1)
        ok_pos_c = (self.pos_cross & has_neg[None, :]).any(axis=1)
        self.anchors = np.flatnonzero(has_neg & (ok_pos_t | ok_pos_c))
        if self.anchors.size == 0:
            raise ValueRangeError(
                "labels, identity, time: no frame has both a hard negative and a hard positive; "
                "use longer videos or more identities"
            )
        self._has_neg = has_neg

    @staticmethod
    def candidate_masks(
        labels: np.ndarray, identity: np.ndarray, time: np.ndarray, cfg: SamplerConfig
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(N, N)`` bool masks: hard negatives, temporal and cross-identity hard positives
        (row: the anchor)."""
        y = labels.astype(np.int64)
        shared = y @ y.T
        k = y.sum(axis=1)[:, None]
        same = identity[:, None] == identity[None, :]
        eye = np.eye(len(y), dtype=bool)
        dt = np.abs(time[:, None] - time[None, :])
        differ = (y[:, None, :] != y[None, :, :]).any(axis=2)
        neg = same & differ & ((shared == 0) | (dt > cfg.far_s))
        pos_t = same & ~eye & (dt <= cfg.near_s)
        k_other = y.sum(axis=1)[None, :]
        cross_ok = np.where(
            k == 0,
            k_other == 0,
            np.where(
                k == 1,
                shared >= 1,
                (shared >= 2) & (shared >= cfg.min_shared_ratio * k),
            ),
        )
        pos_c = ~same & cross_ok
        return neg, pos_t, pos_c

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` quadruples as an ``(n, 4)`` int64 array of frame indices ``[a, a-, p, p-]``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ParameterError(f"n: expected a positive integer, got {n!r}")
        out = np.empty((int(n), 4), np.int64)
        for r in range(int(n)):
            a = int(rng.choice(self.anchors))
            pt = np.flatnonzero(self.pos_temporal[a] & self._has_neg)
            pc = np.flatnonzero(self.pos_cross[a] & self._has_neg)
            use_t = pt.size > 0 and (pc.size == 0 or rng.random() < self.cfg.temporal_positive_p)
            p = int(rng.choice(pt if use_t else pc))
            out[r] = (
                a,
                int(rng.choice(np.flatnonzero(self.neg[a]))),
                p,
                int(rng.choice(np.flatnonzero(self.neg[p]))),
            )
        return out
