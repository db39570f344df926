"""M2: the Self-Cure Network expression classifier (config, data, method, export, train).

Commands: ``python -m training.m2 --help``. See ``docs/m2.md``.
"""

from .config import M2Config, M2DataConfig
from .method import M2Method, predict_m2

__all__ = ["M2Config", "M2DataConfig", "M2Method", "predict_m2"]
