"""M1: identity-disentangled AU detection with contrastive learning (METHODS.md, M1).

Modules: ``config`` (run file sections), ``data`` (identity-labelled videos, 49 landmarks, the
pair sampler), ``losses``, ``auxnets`` (training-only networks), ``train`` (step, loop,
evaluation), ``export`` (ONNX + manifest of the inference path). See ``docs/m1.md``.
"""

from .config import M1Config

__all__ = ["M1Config"]
