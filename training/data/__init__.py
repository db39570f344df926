"""The M0 data pipeline: aligned faces (synthetic or from dataset readers), label noise,
augmentation and batches.

Submodules:
    config    ``DataConfig`` / ``SynthConfig``, the ``data:`` section of a run file
    faces     ``AlignedFaces``; ``synth_faces`` (rendered, aligned, cached) and ``dataset_faces``
              (BP4D / DISFA / EmotioNet layouts), both aligned with ``auperf.align`` +
              ``auperf.ops.warp_faces`` as at inference
    augment   random crop, flip, grayscale, normalisation (torch, seeded)
    pipeline  accurate / inaccurate split, noisy labels, ``TrainBatches`` / ``EvalBatches``,
              ``build_m0_data``
"""

from .augment import augment_batch, centre_crop, normalise, random_crop
from .config import DataConfig, SynthConfig, aligned_size, parse_data_config
from .faces import TEST, TRAIN, VAL, AlignedFaces, align_images, dataset_faces, synth_faces
from .pipeline import (
    EvalBatches,
    M0Data,
    TrainBatches,
    build_m0_data,
    label_agreement,
    make_noisy_labels,
)

__all__ = [
    "TEST",
    "TRAIN",
    "VAL",
    "AlignedFaces",
    "DataConfig",
    "EvalBatches",
    "M0Data",
    "SynthConfig",
    "TrainBatches",
    "align_images",
    "aligned_size",
    "augment_batch",
    "build_m0_data",
    "centre_crop",
    "dataset_faces",
    "label_agreement",
    "make_noisy_labels",
    "normalise",
    "parse_data_config",
    "random_crop",
    "synth_faces",
]
