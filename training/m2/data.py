"""M2 data: aligned expression faces (rendered or from RAF-DB / AffectNet / FERPlus layouts),
label flips on the training split, and the batch iterators.

Faces are aligned exactly as at inference (:func:`training.data.faces.align_images`: the
5-point similarity to ``auperf.align.template(A)`` and ``auperf.ops.warp_faces``), with
``A = round(S * 256 / 224)`` for network input ``S``. Rendered faces show the AU prototypes of
the expressions (:func:`auperf.synth.sample_category`) and are split by identity, so validation
and test faces are of identities never trained on. Only training labels are flipped; validation
and test keep the true labels.

Batch format (dicts of tensors): ``"image"`` ``(B, 3, S, S)`` float32 normalised,
``"label"`` ``(B,)`` int64 training labels (possibly flipped), ``"index"`` ``(B,)`` int64 sample
index in the training split (what relabelling keys on), ``"true"`` ``(B,)`` int64 true labels
(used only for reporting, never by the loss).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from auperf import __version__ as auperf_version
from auperf.errors import DatasetError

from ..data.augment import augment_batch, centre_crop, normalise
from ..data.config import SynthConfig, aligned_size
from ..data.faces import TEST, TRAIN, VAL, _split_subjects, align_images
from .config import M2Config

__all__ = [
    "ExpressionFaces",
    "ExpressionBatches",
    "M2Data",
    "build_m2_data",
    "dataset_expression_faces",
    "synth_expression_faces",
]

_log = logging.getLogger("auperf.training")
_CACHE_FORMAT = 1


@dataclass
class ExpressionFaces:
    """Aligned faces with expression labels (``N`` faces).

    Attributes:
        images: ``(N, 3, A, A)`` uint8 RGB aligned crops.
        labels: ``(N,)`` int64 true class indices (order of :data:`auperf.labels.EXPRESSIONS`).
        subject: ``(N,)`` int64 identity index.
        split: ``(N,)`` int8 ``TRAIN`` / ``VAL`` / ``TEST`` of :mod:`training.data.faces`.
        keys: ``(N,)`` sample names.
    """

    images: np.ndarray
    labels: np.ndarray
    subject: np.ndarray
    split: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def indices(self, split: int) -> np.ndarray:
        """Indices of the faces of one split."""
        return np.flatnonzero(self.split == split)


def _synth_key(
    cfg: SynthConfig, aligned: int, num_classes: int, intensity: tuple[float, float]
) -> str:
    blob = json.dumps(
        {
            "format": _CACHE_FORMAT,
            "auperf": auperf_version,
            "aligned": aligned,
            "classes": num_classes,
            "intensity": list(intensity),
            **asdict(cfg),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def synth_expression_faces(
    cfg: SynthConfig,
    aligned: int,
    num_classes: int = 7,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    intensity: tuple[float, float] = (0.4, 1.0),
) -> ExpressionFaces:
    """Render and align faces showing the expression prototypes, split by identity (cached).

    Every face has a random identity of its split, pose, framing and expression category among
    the first ``num_classes`` of :data:`auperf.labels.EXPRESSIONS`, with prototype intensities
    in ``intensity``; its label is that category.
    """
    from tqdm.auto import tqdm

    from auperf import synth

    from ..data.faces import _augment_preset

    path = None
    if cache_dir is not None:
        key = _synth_key(cfg, aligned, num_classes, intensity)
        path = Path(cache_dir) / f"m2synth-{key}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            _log.info("expression faces: reusing %s", path)
            return ExpressionFaces(a["images"], a["labels"], a["subject"], a["split"], a["keys"])
    rng = np.random.default_rng(cfg.seed)
    n_ids = cfg.train_identities + cfg.val_identities + cfg.test_identities
    identities = synth.sample_identities(rng, n_ids)
    subject = np.repeat(np.arange(n_ids), cfg.faces_per_identity)
    split_of_id = np.repeat(
        np.array([TRAIN, VAL, TEST], np.int8),
        [cfg.train_identities, cfg.val_identities, cfg.test_identities],
    )
    n = subject.size
    params = synth.sample_params(rng, n, identities=identities[subject], expression="neutral")
    expr, labels = synth.sample_category(
        rng, n, categories=list(range(num_classes)), intensity=tuple(intensity)
    )
    params[:, synth.EXPRESSION_SLICE] = expr
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
    images = np.empty((n, 3, aligned, aligned), np.uint8)
    with tqdm(total=n, desc="render + align", disable=not progress, leave=False) as bar:
        for s in range(0, n, cfg.batch):
            e = min(n, s + cfg.batch)
            out = renderer.render(params[s:e], identity=subject[s:e])
            if not np.array_equal(out.expression, labels[s:e]):
                raise DatasetError(
                    "the renderer reports other expression categories than were sampled "
                    f"(faces {s}-{e})"
                )
            images[s:e] = align_images(out.images, out.landmarks5, aligned)
            bar.update(e - s)
    a = {
        "images": images,
        "labels": labels.astype(np.int64),
        "subject": subject.astype(np.int64),
        "split": split_of_id[subject],
        "keys": np.array([f"synth/id{i:05d}/face{k:06d}" for k, i in enumerate(subject)]),
    }
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
        np.savez(tmp, **a)
        os.replace(tmp, path)
    return ExpressionFaces(a["images"], a["labels"], a["subject"], a["split"], a["keys"])


def dataset_expression_faces(
    root: str | Path,
    aligned: int,
    *,
    layout: str | None = None,
    num_classes: int = 7,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    progress: bool = False,
) -> ExpressionFaces:
    """Read and align the faces of a RAF-DB, AffectNet or FERPlus layout.

    The layout's own test split (``split`` ``"test"``, ``"val"`` or ``"valid"``, ``"publictest"``,
    ``"privatetest"``) is the test split; the rest is split by subject (by sample where the
    layout has no subjects) into training and validation. Samples with no expression label or a
    class ``>= num_classes`` (contempt with 7 classes) are left out, and their number logged.

    Raises:
        DatasetError: a kept sample without 5-point landmarks (named by its key), no kept
            samples, or a split that leaves no training subject.
    """
    from tqdm.auto import tqdm

    from auperf.datasets import open_dataset

    reader = open_dataset(root, layout)
    try:
        expr = reader.expression_array()
        keep = np.flatnonzero((expr >= 0) & (expr < num_classes))
        if keep.size == 0:
            raise DatasetError(
                f"no sample has an expression label in [0, {num_classes})", path=reader.root
            )
        if keep.size < len(reader):
            _log.info(
                "%s: left out %d samples without a usable label",
                reader.root,
                len(reader) - keep.size,
            )
        samples = [reader[int(i)] for i in keep]
        for s in samples:
            if s.landmarks is None:
                raise DatasetError(
                    f"sample {s.key!r} has no 5-point landmarks; add them to the layout or to "
                    "the auperf_landmarks.csv sidecar",
                    path=reader.root,
                )
        test_names = ("test", "val", "valid", "validation", "publictest", "privatetest")
        is_test = np.array([(s.split or "").lower() in test_names for s in samples])
        subjects = [s.subject if s.subject is not None else s.key for s in samples]
        rest = [subjects[i] for i in np.flatnonzero(~is_test)]
        if not rest:
            raise DatasetError(
                "every sample is in the test split; nothing to train on", path=reader.root
            )
        split_of = _split_subjects(rest, val_fraction, 0.0, split_seed)
        split = np.array(
            [TEST if is_test[i] else split_of[subjects[i]] for i in range(len(samples))], np.int8
        )
        names = sorted(set(subjects))
        index = {name: i for i, name in enumerate(names)}
        images = np.empty((len(samples), 3, aligned, aligned), np.uint8)
        for k, s in enumerate(tqdm(samples, desc="align", disable=not progress, leave=False)):
            img = reader.load_image(s)
            images[k] = align_images(img[None], s.landmarks[None], aligned)[0]
    finally:
        reader.close()
    return ExpressionFaces(
        images=images,
        labels=expr[keep].astype(np.int64),
        subject=np.array([index[x] for x in subjects], np.int64),
        split=split,
        keys=np.array([s.key for s in samples]),
    )


class ExpressionBatches:
    """Batches of one split, callable as ``(epoch, generator) -> iterator`` (the loop's
    ``train_data`` / ``val_data`` form).

    Args:
        images: ``(N, 3, A, A)`` uint8 aligned crops. labels: ``(N,)`` labels the loss sees.
        true: ``(N,)`` true labels. input_size: ``S``. batch_size: faces per batch.
        mean, std, colour_order: normalisation. train: shuffle and augment (random crop,
        flip, grey) when True; centre crops in order otherwise.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        true: np.ndarray,
        input_size: int,
        batch_size: int,
        mean,
        std,
        colour_order: str = "RGB",
        train: bool = True,
        flip_p: float = 0.5,
        grayscale_p: float = 0.1,
        drop_last: bool = False,
    ) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.true = torch.as_tensor(true, dtype=torch.int64)
        self.input_size = input_size
        self.batch_size = batch_size
        self.mean, self.std, self.colour_order = mean, std, colour_order
        self.train = train
        self.flip_p, self.grayscale_p = flip_p, grayscale_p
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = int(self.labels.shape[0])
        if self.train and self.drop_last and n >= self.batch_size:
            return n // self.batch_size
        return -(-n // self.batch_size)

    def __call__(self, epoch: int, generator: torch.Generator):
        n = int(self.labels.shape[0])
        order = torch.randperm(n, generator=generator) if self.train else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[idx]
            if self.train:
                x = augment_batch(
                    x,
                    self.input_size,
                    generator,
                    mean=self.mean,
                    std=self.std,
                    colour_order=self.colour_order,
                    flip_p=self.flip_p,
                    grayscale_p=self.grayscale_p,
                )
            else:
                x = normalise(
                    centre_crop(x, self.input_size).float(), self.mean, self.std, self.colour_order
                )
            yield {"image": x, "label": self.labels[idx], "true": self.true[idx], "index": idx}


@dataclass
class M2Data:
    """The M2 data of one run.

    Attributes:
        faces: all faces. train_idx, val_idx, test_idx: indices of the splits into ``faces``.
        train_labels: ``(N_train,)`` training labels after the flips.
        flipped: ``(N_train,)`` bool, which training labels were flipped.
        train, val, test: :class:`ExpressionBatches` (``test`` is ``None`` when empty).
    """

    faces: ExpressionFaces
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    train_labels: np.ndarray
    flipped: np.ndarray
    train: ExpressionBatches
    val: ExpressionBatches
    test: ExpressionBatches | None


def build_m2_data(cfg: M2Config, progress: bool = False, eval_batch: int = 256) -> M2Data:
    """Faces, flips and batch iterators for ``cfg``.

    Raises:
        DatasetError: no training or validation faces, or the dataset errors above.
    """
    from auperf.datasets import flip_expressions

    d = cfg.data
    aligned = aligned_size(cfg.input_size)
    if d.source == "synth":
        faces = synth_expression_faces(
            d.synth, aligned, d.num_classes, d.cache_dir, progress, tuple(d.intensity)
        )
    else:
        faces = dataset_expression_faces(
            d.source,
            aligned,
            layout=d.layout,
            num_classes=d.num_classes,
            val_fraction=d.val_fraction,
            split_seed=d.split_seed,
            progress=progress,
        )
    tr, va, te = faces.indices(TRAIN), faces.indices(VAL), faces.indices(TEST)
    if tr.size == 0 or va.size == 0:
        raise DatasetError(f"expected training and validation faces, got {tr.size} and {va.size}")
    true = faces.labels[tr]
    if d.noise == "none" or d.noise_rate == 0:
        labels, flipped = true.copy(), np.zeros(tr.size, bool)
    else:
        labels, flipped = flip_expressions(
            true, d.noise_rate, d.noise_seed, mode=d.noise, num_classes=d.num_classes
        )
    common = dict(mean=cfg.mean, std=cfg.std, colour_order=cfg.colour_order)
    train = ExpressionBatches(
        faces.images[tr],
        labels,
        true,
        cfg.input_size,
        cfg.train.batch_size,
        train=True,
        flip_p=d.flip_p,
        grayscale_p=d.grayscale_p,
        drop_last=cfg.train.drop_last,
        **common,
    )

    def ev(idx: np.ndarray) -> ExpressionBatches:
        y = faces.labels[idx]
        return ExpressionBatches(
            faces.images[idx], y, y, cfg.input_size, eval_batch, train=False, **common
        )

    return M2Data(
        faces,
        tr,
        va,
        te,
        labels.astype(np.int64),
        flipped.astype(bool),
        train,
        ev(va),
        ev(te) if te.size else None,
    )
