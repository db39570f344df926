"""From aligned faces to the batches :class:`training.m0.M0Method` trains on.

The training split (identities or subjects) is divided by identity into an unlabelled set
(``unlabelled_fraction`` of the identities, labels withheld), an accurately labelled set
(``accurate_fraction`` of the other identities) and an inaccurately labelled set whose labels
come from a noise generator at a given rate; the true labels of all three are kept for
evaluation.

Three ways to hand the labels to a trainer (``label_mode``):

- ``"m0"``: accurate faces carry ``clean_labels`` (and ``noisy_labels = -1``), inaccurate faces
  carry ``noisy_labels`` (and ``clean_labels = -1``): M0's clean and noisy heads.
- ``"merged"``: every labelled face carries its given label as ``clean_labels``, accurate or
  not: the baselines, which do not know which labels are inaccurate.
- ``"semi"``: the semi-supervised variant: accurate faces carry ``clean_labels``; unlabelled
  faces carry ``clean_labels = -1`` (their labels are hidden) and ``unlabelled = True``, and the
  method gives them pseudo-labels. There is no inaccurate set (no noisy heads).

Unlabelled faces are part of the training batches only in ``"semi"`` mode.

Example::

    data = build_m0_data(cfg)                       # cfg: M0Config
    trainer = Trainer(method, cfg.train, data.train_batches("m0"), data.eval_batches("val"))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from auperf.errors import ParameterError

from ..common.config import ConfigError
from .augment import augment_batch, centre_crop, normalise
from .config import DataConfig, aligned_size, parse_data_config
from .faces import TEST, TRAIN, VAL, AlignedFaces, dataset_faces, synth_faces

__all__ = ["M0Data", "TrainBatches", "EvalBatches", "build_m0_data", "make_noisy_labels"]

_log = logging.getLogger("auperf.training")


def make_noisy_labels(
    labels: np.ndarray,
    features: np.ndarray,
    kind: str,
    rate: float,
    seed: int,
    temperature: float = 0.25,
) -> np.ndarray:
    """Inaccurate labels for ``labels`` ``(N, L)`` int8.

    Args:
        labels: true labels (1, 0, -1 unknown).
        features: ``(N, F)`` appearance covariates (used by ``weak_model``).
        kind: ``"none"`` (a copy), ``"flip"`` (:func:`auperf.datasets.flip_labels`) or
            ``"weak_model"`` (:func:`auperf.datasets.weak_model_labels`).
        rate: rate of wrong labels, per AU, among positives and among negatives.
        seed: seed of the noise.
        temperature: weak-model temperature.

    Returns:
        ``(N, L)`` int8.
    """
    from auperf.datasets import flip_labels, weak_model_labels

    y = np.asarray(labels, np.int8)
    if kind == "none" or rate == 0 or y.shape[0] == 0:
        return y.copy()
    if kind == "flip":
        return flip_labels(y, rate, seed).labels.astype(np.int8)
    if kind == "weak_model":
        return weak_model_labels(
            y, features, seed, error_rate=rate, temperature=temperature
        ).labels.astype(np.int8)
    raise ParameterError(f"kind: expected 'none', 'flip' or 'weak_model', got {kind!r}")


class _SizedBatches:
    def __init__(self, make: Iterator[dict[str, Tensor]], n: int) -> None:
        self._make, self._n = make, n

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return self._make

    def __len__(self) -> int:
        return self._n


class TrainBatches:
    """The training data as a callable ``(epoch, generator) -> batches`` for
    :class:`training.common.loop.Trainer`; shuffling and augmentation draw from the generator.

    Args:
        images: ``(N, 3, A, A)`` uint8 aligned crops.
        clean_labels, noisy_labels: ``(N, L)`` float, -1 unknown; ``noisy_labels`` may be None.
        input_size: side ``S`` of the crops the network sees.
        batch_size: faces per batch.
        mean, std, colour_order: input normalisation.
        flip_p, grayscale_p: augmentation probabilities.
        two_views: augment each face twice, one per view (``image`` ``(B, 2, 3, S, S)``).
        drop_last: drop the last incomplete batch.
        unlabelled: ``(N,)`` bool, faces without labels (semi-supervised variant), yielded as
            the ``unlabelled`` key of every batch; their ``clean_labels`` (and
            ``noisy_labels``) must be -1. ``None``: no such key.

    Raises:
        ParameterError: ``unlabelled`` of the wrong shape, or an unlabelled face with a known
            label (its row is named).
    """

    def __init__(
        self,
        images: Tensor,
        clean_labels: Tensor,
        noisy_labels: Tensor | None,
        *,
        input_size: int,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        colour_order: str = "RGB",
        flip_p: float = 0.5,
        grayscale_p: float = 0.2,
        two_views: bool = True,
        drop_last: bool = False,
        unlabelled: Tensor | None = None,
    ) -> None:
        if unlabelled is not None:
            unlabelled = torch.as_tensor(unlabelled, dtype=torch.bool)
            if unlabelled.shape != (images.shape[0],):
                raise ParameterError(
                    f"unlabelled: expected shape ({images.shape[0]},), got "
                    f"{tuple(unlabelled.shape)}"
                )
            for name, y in (("clean_labels", clean_labels), ("noisy_labels", noisy_labels)):
                if y is None:
                    continue
                leak = torch.nonzero(unlabelled & (y >= 0).any(dim=1)).flatten()
                if leak.numel():
                    raise ParameterError(
                        f"{name}: row {int(leak[0])} is an unlabelled face but has a known label "
                        "(expected all -1)"
                    )
        self.unlabelled = unlabelled
        self.images = images
        self.clean_labels = clean_labels
        self.noisy_labels = noisy_labels
        self.input_size = input_size
        self.batch_size = batch_size
        self.aug = dict(
            mean=mean, std=std, colour_order=colour_order, flip_p=flip_p, grayscale_p=grayscale_p
        )
        self.two_views = two_views
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __call__(self, epoch: int, generator: torch.Generator) -> _SizedBatches:
        order = torch.randperm(self.images.shape[0], generator=generator)
        return _SizedBatches(self._iterate(order, generator), len(self))

    def _iterate(self, order: Tensor, gen: torch.Generator) -> Iterator[dict[str, Tensor]]:
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            raw = self.images[idx]
            views = [augment_batch(raw, self.input_size, gen, **self.aug)]
            if self.two_views:
                views.append(augment_batch(raw, self.input_size, gen, **self.aug))
            batch = {
                "image": torch.stack(views, dim=1) if self.two_views else views[0],
                "clean_labels": self.clean_labels[idx],
            }
            if self.noisy_labels is not None:
                batch["noisy_labels"] = self.noisy_labels[idx]
            if self.unlabelled is not None:
                batch["unlabelled"] = self.unlabelled[idx]
            yield batch


class EvalBatches:
    """Evaluation data: centre crops, no augmentation; callable like :class:`TrainBatches` and
    iterable (for :func:`training.m0.predict_m0`).

    Args:
        images: ``(N, 3, A, A)`` uint8.
        labels: ``(N, L)`` float true labels (-1 unknown), given as ``clean_labels``.
        input_size, batch_size, mean, std, colour_order: as for :class:`TrainBatches`.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        *,
        input_size: int,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        colour_order: str = "RGB",
    ) -> None:
        self.images, self.labels = images, labels
        self.input_size, self.batch_size = input_size, batch_size
        self.norm = dict(mean=mean, std=std, colour_order=colour_order)

    def __len__(self) -> int:
        return math.ceil(self.images.shape[0] / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for s in range(0, self.images.shape[0], self.batch_size):
            x = centre_crop(self.images[s : s + self.batch_size], self.input_size)
            yield {
                "image": normalise(x, **self.norm),
                "clean_labels": self.labels[s : s + self.batch_size],
            }

    def __call__(self, epoch: int, generator: torch.Generator) -> EvalBatches:
        return self


@dataclass
class M0Data:
    """Everything a run needs from the data, split and labelled.

    Attributes:
        faces: the aligned faces.
        au_ids: the AUs trained on, in output order.
        accurate: indices (into ``faces``) of the accurately labelled training faces.
        inaccurate: indices of the inaccurately labelled training faces.
        val, test: indices of the held-out validation and test faces.
        true_labels: ``(N, L)`` int8 true labels of every face.
        given_labels: ``(N, L)`` int8 labels the trainer sees: true for accurate faces, noisy for
            inaccurate ones (true elsewhere; for unlabelled faces they are never handed out).
        cfg: the data settings.
        input_size, batch_size, mean, std, colour_order: how batches are made.
        unlabelled: indices of the training faces whose labels are withheld.
    """

    faces: AlignedFaces
    au_ids: tuple[int, ...]
    accurate: np.ndarray
    inaccurate: np.ndarray
    val: np.ndarray
    test: np.ndarray
    true_labels: np.ndarray
    given_labels: np.ndarray
    cfg: DataConfig
    input_size: int
    batch_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    colour_order: str = "RGB"
    unlabelled: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def noise_agreement(self) -> float:
        """Fraction of the inaccurate set's known labels that equal the true ones."""
        return label_agreement(
            self.given_labels[self.inaccurate], self.true_labels[self.inaccurate]
        )

    def _train_arrays(self, label_mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        idx = np.concatenate([self.accurate, self.inaccurate])
        n_acc = self.accurate.size
        if label_mode == "merged":
            return idx, self.given_labels[idx].astype(np.float32), None
        if label_mode == "semi":
            if self.inaccurate.size:
                raise ParameterError(
                    f"label_mode: 'semi' has no noisy heads for the {self.inaccurate.size} "
                    "inaccurately labelled faces (set data.accurate_fraction to 1)"
                )
            idx = np.concatenate([self.accurate, self.unlabelled])
            clean = self.given_labels[idx].astype(np.float32)
            clean[n_acc:] = -1.0  # the withheld labels never reach the trainer
            return idx, clean, None
        if label_mode != "m0":
            raise ParameterError(
                f"label_mode: expected 'm0', 'merged' or 'semi', got {label_mode!r}"
            )
        clean = self.given_labels[idx].astype(np.float32)
        noisy = clean.copy()
        clean[n_acc:] = -1.0
        noisy[:n_acc] = -1.0
        return idx, clean, noisy

    def train_label_matrices(self, label_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``(clean, noisy)`` label matrices of the training faces (for balance weights)."""
        _, clean, noisy = self._train_arrays(label_mode)
        if noisy is not None and not (noisy >= 0).any():
            noisy = None
        return clean, noisy

    def train_batches(
        self,
        label_mode: str = "m0",
        *,
        refined_noisy: np.ndarray | None = None,
        drop_last: bool = False,
        two_views: bool | None = None,
    ) -> TrainBatches:
        """The training batches.

        Args:
            label_mode: ``"m0"``, ``"merged"`` or ``"semi"`` (see the module docstring); in
                ``"semi"`` mode the batches carry ``unlabelled``.
            refined_noisy: ``(len(inaccurate), L)`` labels replacing the inaccurate set's
                given labels (after label refinement; soft values allowed).
            drop_last: drop the last incomplete batch.
            two_views: override ``data.two_views`` (a single-view network needs one image).
        """
        idx, clean, noisy = self._train_arrays(label_mode)
        if refined_noisy is not None:
            r = np.asarray(refined_noisy, np.float32)
            if r.shape != (self.inaccurate.size, len(self.au_ids)):
                raise ParameterError(
                    f"refined_noisy: expected shape ({self.inaccurate.size}, {len(self.au_ids)}), "
                    f"got {r.shape}"
                )
            if label_mode == "semi":
                raise ParameterError("refined_noisy: 'semi' mode has no inaccurate set to refine")
            target = noisy if noisy is not None else clean
            target[self.accurate.size :] = r
        unlabelled = None
        if label_mode == "semi":
            unlabelled = torch.from_numpy(np.arange(idx.size) >= self.accurate.size)
        d = self.cfg
        return TrainBatches(
            torch.from_numpy(self.faces.images[idx]),
            torch.from_numpy(clean),
            torch.from_numpy(noisy) if noisy is not None else None,
            input_size=self.input_size,
            batch_size=self.batch_size,
            mean=self.mean,
            std=self.std,
            colour_order=self.colour_order,
            flip_p=d.flip_p,
            grayscale_p=d.grayscale_p,
            two_views=d.two_views if two_views is None else two_views,
            drop_last=drop_last,
            unlabelled=unlabelled,
        )

    def eval_batches(self, which: str | np.ndarray, batch_size: int | None = None) -> EvalBatches:
        """Centre-crop batches of ``"val"``, ``"test"``, ``"inaccurate"``, ``"accurate"``,
        ``"unlabelled"`` or an index array, labelled with the true labels."""
        idx = self._named(which)
        return EvalBatches(
            torch.from_numpy(self.faces.images[idx]),
            torch.from_numpy(self.true_labels[idx].astype(np.float32)),
            input_size=self.input_size,
            batch_size=batch_size or max(self.batch_size, 128),
            mean=self.mean,
            std=self.std,
            colour_order=self.colour_order,
        )

    def _named(self, which: str | np.ndarray) -> np.ndarray:
        if isinstance(which, str):
            table = {
                "val": self.val,
                "test": self.test,
                "inaccurate": self.inaccurate,
                "accurate": self.accurate,
                "unlabelled": self.unlabelled,
            }
            if which not in table:
                raise ParameterError(f"which: expected one of {sorted(table)}, got {which!r}")
            return table[which]
        return np.asarray(which, np.int64)


def label_agreement(given: np.ndarray, true: np.ndarray) -> float:
    """Fraction of entries known in both where hard ``given`` (>= 0.5) equals ``true``."""
    g, t = np.asarray(given, np.float64), np.asarray(true, np.float64)
    known = (g >= 0) & (t >= 0)
    if not known.any():
        return float("nan")
    return float(((g >= 0.5) == (t == 1))[known].mean())


def build_m0_data(cfg, progress: bool | None = None) -> M0Data:
    """Build the data of an M0 run from its configuration.

    Args:
        cfg: an :class:`training.m0.M0Config`; its ``data`` section is parsed with
            :func:`training.data.config.parse_data_config`.
        progress: show progress bars (default: ``cfg.train.progress``).

    Returns:
        :class:`M0Data`.

    Raises:
        ConfigError: a bad ``data`` section. DatasetError / ParameterError: see the readers and
            :meth:`AlignedFaces.labels_for`.
    """
    d = parse_data_config(cfg.data)
    progress = cfg.train.progress if progress is None else progress
    aligned = d.aligned_size or aligned_size(cfg.input_size)
    if (aligned - cfg.input_size) % 2:
        _log.warning(
            "aligned size %d and input size %d differ by an odd number of pixels: the centre "
            "crop is half a pixel off the manifest's template",
            aligned,
            cfg.input_size,
        )
    if d.source == "synth":
        faces = synth_faces(d.synth, aligned, d.cache_dir, progress)
    else:
        faces = dataset_faces(
            d.source,
            cfg.au_ids,
            aligned,
            layout=d.layout,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            split_seed=d.split_seed,
            progress=progress,
        )
    true = faces.labels_for(cfg.au_ids)
    train = faces.indices(TRAIN)
    subjects = np.unique(faces.subject[train])
    rng = np.random.default_rng(d.split_seed)
    perm = rng.permutation(subjects)
    # Withheld identities first, then the accurate / inaccurate split of the others (with no
    # unlabelled set this is the split of earlier versions, identity for identity).
    n_unl = int(math.ceil(d.unlabelled_fraction * subjects.size))
    if n_unl >= subjects.size:
        raise ConfigError(
            f"data.unlabelled_fraction: {d.unlabelled_fraction} withholds the labels of all "
            f"{subjects.size} training identities; expected some labelled ones"
        )
    unl_subjects, labelled = set(perm[:n_unl].tolist()), perm[n_unl:]
    n_acc = int(math.ceil(d.accurate_fraction * labelled.size))
    acc_subjects = set(labelled[:n_acc].tolist())
    is_unl = np.array([s in unl_subjects for s in faces.subject[train]], bool)
    is_acc = np.array([s in acc_subjects for s in faces.subject[train]], bool)
    unlabelled = train[is_unl]
    accurate, inaccurate = train[is_acc], train[~is_acc & ~is_unl]
    given = true.copy()
    if inaccurate.size:
        given[inaccurate] = make_noisy_labels(
            true[inaccurate],
            faces.features[inaccurate],
            d.noise,
            d.noise_rate,
            d.noise_seed,
            d.weak_temperature,
        )
    data = M0Data(
        faces=faces,
        au_ids=tuple(int(a) for a in cfg.au_ids),
        accurate=accurate,
        inaccurate=inaccurate,
        val=faces.indices(VAL),
        test=faces.indices(TEST),
        true_labels=true,
        given_labels=given,
        cfg=d,
        input_size=cfg.input_size,
        batch_size=cfg.train.batch_size,
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        colour_order=cfg.colour_order,
        unlabelled=unlabelled,
    )
    _log.info(
        "data: %d accurate + %d inaccurate + %d unlabelled training faces (%s noise at %.0f%%, "
        "agreement %.3f), %d validation, %d test",
        accurate.size,
        inaccurate.size,
        unlabelled.size,
        d.noise,
        100 * d.noise_rate,
        data.noise_agreement() if inaccurate.size else float("nan"),
        data.val.size,
        data.test.size,
    )
    return data
