"""M4: the Twin-Cycle Autoencoder, self-supervised AU features from video (METHODS.md, M4).

Submodules:
    config    ``M4Config`` (with the curriculum and data sections), the run file
    losses    L_rec, L1^A, L_cyc^A/P, L_emb^A/P and the weighted, normalised total
    data      rendered or folder video clips, frame pairs with the curriculum's gap
    method    ``M4Method`` for the generic trainer
    train     ``train_m4``: clips -> training -> export
    export    ONNX + manifest (task ``features``) + safetensors of the encoder
    evaluate  linear AU probes and pose regression on frozen embeddings; baselines
    diagnose  short runs printing field sizes and embedding spread (collapse checks)

The network lives in :mod:`auperf.nets.m4`. Command line: ``python -m training.m4 --help``.
"""

from .config import CurriculumConfig, M4Config, M4DataConfig
from .losses import M4LossTerms, M4LossWeights, m4_loss
from .method import M4Method, build_tcae

__all__ = [
    "CurriculumConfig",
    "M4Config",
    "M4DataConfig",
    "M4LossTerms",
    "M4LossWeights",
    "M4Method",
    "build_tcae",
    "m4_loss",
]
