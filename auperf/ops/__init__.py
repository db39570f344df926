"""Compiled operations of auperf (thin wrappers over ``auperf._core``).

- :func:`warp_faces`: alignment warp + crop + colour order + normalisation + layout, one pass.
- :func:`fuse_views`: sigmoid of the mean of the views' logits and thresholding, one pass.
- :func:`adam_step`: one projected Adam step for N independent fits, with the per-face
  convergence test, in place (:class:`FitStatus` names the outcomes).

:mod:`auperf.ops.reference` holds plain NumPy versions of the same maths, used as test oracles.
"""

from .fit import FitStatus, adam_step
from .fuse import fuse_views
from .warp import warp_faces

__all__ = ["warp_faces", "fuse_views", "adam_step", "FitStatus"]
