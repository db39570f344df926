"""Rendered data written in the public datasets' layouts.

:func:`write_dataset` renders faces with known labels and writes them through the
:mod:`auperf.datasets` writers, so that anything reading BP4D, DISFA, EmotioNet or RAF-DB
(the trainers' adapters, users' own tools) can be run and tested on data whose every label is
known. AU datasets get one identity per subject and a smooth video sequence per subject;
RAF-DB gets single images of the basic expressions.

AU labels come from the expression dims through :data:`EXPRESSION_AU` (intensity = 5 x dim),
which covers every AU these layouts code that the renderer draws; AUs a layout codes but the
renderer does not draw are written as unknown where the layout has an unknown code, and are
left out of the layout's AU list otherwise.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from .params import ACTIVE_LEVEL, EXPRESSION_AU, EXPRESSION_SLICE
from .render import FaceRenderer
from .samplers import sample_params
from .video import render_sequence

__all__ = ["write_dataset", "DATASET_LAYOUTS", "au_values"]

logger = logging.getLogger("auperf")

DATASET_LAYOUTS = ("bp4d", "disfa", "emotionet", "rafdb")
_DRAWN_AUS = tuple(a for a in EXPRESSION_AU if a is not None)


def au_values(params: np.ndarray) -> dict[int, np.ndarray]:
    """AU intensity 0-5 of every AU the renderer draws, ``{au: (N,)}``, from ``(N, PARAM_DIM)``."""
    expr = np.asarray(params, dtype=np.float64)[:, EXPRESSION_SLICE]
    return {au: 5.0 * expr[:, j] for j, au in enumerate(EXPRESSION_AU) if au is not None}


def write_dataset(
    root: str | Path,
    layout: str,
    *,
    subjects: int = 4,
    frames_per_subject: int = 20,
    size: int = 256,
    fps: float = 10.0,
    seed: int = 0,
    augment=None,
    exist_ok: bool = False,
) -> Path:
    """Render a small dataset and write it in ``layout``.

    Args:
        root: Output folder (created; must not exist unless ``exist_ok``).
        layout: One of :data:`DATASET_LAYOUTS`.
        subjects: Identities (BP4D/DISFA subjects; EmotioNet/RAF-DB: image groups).
        frames_per_subject: Frames per subject (a sequence at ``fps`` for BP4D/DISFA).
        size: Rendered image size in pixels.
        fps: Frame rate of the BP4D/DISFA sequences.
        seed: Seed of identities, trajectories and rendering.
        augment: Passed to the renderer (None: its default).
        exist_ok: Allow writing into an existing folder.

    Returns:
        The dataset root.

    Raises:
        ParameterError: an unknown layout or non-positive counts.
    """
    from .. import datasets as ds

    if layout not in DATASET_LAYOUTS:
        raise ParameterError(f"layout: expected one of {DATASET_LAYOUTS}, got {layout!r}")
    if subjects < 1 or frames_per_subject < 1:
        raise ParameterError(
            f"subjects/frames_per_subject: expected >= 1, got {subjects}/{frames_per_subject}"
        )
    root = Path(root)
    renderer = FaceRenderer(seed=seed, size=size, augment=augment)
    if layout == "rafdb":
        _write_rafdb(ds, root, renderer, subjects * frames_per_subject, seed, exist_ok)
        return root
    if layout == "emotionet":
        _write_emotionet(ds, root, renderer, subjects * frames_per_subject, seed, exist_ok)
        return root

    if layout == "bp4d":
        writer = ds.BP4DWriter(root, exist_ok=exist_ok)
    else:
        aus = tuple(a for a in ds.DISFA_AUS if a in _DRAWN_AUS)
        writer = ds.DISFAWriter(root, au_ids=aus, media="frames", fps=fps, exist_ok=exist_ok)
    with writer:
        for s in range(subjects):
            seq = render_sequence(
                renderer,
                frames_per_subject,
                fps=fps,
                seed=seed * 1000 + s,
                track_id=s,
                augment=augment,
            )
            res = seq.frames
            values = au_values(res.params)
            for k in range(len(res)):
                au_k = {au: float(v[k]) for au, v in values.items()}
                if layout == "bp4d":
                    writer.add(
                        res.images[k],
                        subject=f"F{s + 1:03d}",
                        task="T1",
                        frame=k + 1,
                        occurrence={a: int(au_k[a] >= 5.0 * ACTIVE_LEVEL) for a in ds.BP4D_AUS},
                        intensity={a: float(np.round(au_k[a])) for a in ds.BP4D_AUS},
                        landmarks=res.landmarks5[k],
                    )
                else:
                    writer.add(
                        res.images[k],
                        subject=f"SN{s + 1:03d}",
                        frame=k + 1,
                        intensity={a: float(np.round(au_k[a])) for a in writer.au_ids},
                        landmarks=res.landmarks5[k],
                    )
    logger.info("wrote a %s-layout dataset of %d subjects to %s", layout, subjects, root)
    return root


def _write_emotionet(ds, root, renderer, n, seed, exist_ok):
    rng = np.random.default_rng(seed)
    params = sample_params(rng, n)
    res = renderer.render(params)
    values = au_values(params)
    with ds.EmotioNetWriter(root, exist_ok=exist_ok) as writer:
        for i in range(n):
            occurrence = {
                a: (int(values[a][i] >= 5.0 * ACTIVE_LEVEL) if a in values else -1)
                for a in writer.au_ids
            }
            writer.add(
                res.images[i],
                name=f"synth_{i:05d}",
                occurrence=occurrence,
                landmarks=res.landmarks5[i],
            )


def _write_rafdb(ds, root, renderer, n, seed, exist_ok):
    rng = np.random.default_rng(seed)
    basic = [ds.EXPRESSIONS.index(c) for c in ds.EXPRESSIONS if c != "contempt"]
    with ds.RAFDBWriter(root, exist_ok=exist_ok) as writer:
        written = 0
        while written < n:
            params = sample_params(rng, n - written, expression="category")
            res = renderer.render(params)
            for i in range(len(res)):
                if int(res.expression[i]) not in basic:
                    continue  # contempt or no clean prototype: RAF-DB has 7 basic classes
                split = "test" if written % 5 == 4 else "train"
                writer.add(
                    res.images[i],
                    split=split,
                    expression=int(res.expression[i]),
                    landmarks=res.landmarks5[i],
                )
                written += 1
