"""Network definitions shared by the torch backend and the trainers in ``training/``.

Importing this package does not import torch; the submodules do, when they are first used::

    from auperf.nets.backbones import build_backbone
    from auperf.nets.m0 import M0Net, M0Inference

Submodules:
    backbones  ResNet-18/34/50 and a small depthwise-separable net, by name
    m0         the two-view co-training AU detector (method M0) and its inference wrapper
    m1         the identity-disentangled AU detector (method M1) and its inference path
    m2         the Self-Cure Network expression classifier (method M2)
    m3         M3's imitator, face parser and amortised parameter predictor
    m4         the Twin-Cycle Autoencoder (method M4) and its feature encoder
"""

from __future__ import annotations

__all__: list[str] = []
