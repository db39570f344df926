"""M0: two-view co-training with clean and noisy heads (METHODS.md, M0).

Submodules:
    config  ``M0Config``, the run file
    losses  L_clean, L_noisy, L_mv, L_cons, pseudo-labels, label refinement, balance weights
    method  ``M0Method`` for the generic trainer; ``predict_m0``
    export  ONNX export with checks and the model manifest

The network itself lives in :mod:`auperf.nets.m0` (the torch backend runs it too).
Command line: ``python -m training.m0 --help``.
"""

from .config import M0Config
from .losses import M0LossTerms, M0LossWeights, m0_loss, refine_noisy_labels
from .method import M0Method, predict_m0

__all__ = [
    "M0Config",
    "M0LossTerms",
    "M0LossWeights",
    "M0Method",
    "m0_loss",
    "predict_m0",
    "refine_noisy_labels",
]
