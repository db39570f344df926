"""auperf.frontend: frames in, faces out (boxes, 5 alignment points, landmarks, head pose).

Front ends, chosen by name with :func:`create`:

    ``"mediapipe"``  MediaPipe Face Landmarker (default, ``"auto"``): 478 landmarks, 52
                     blendshapes, head pose; model file shipped with auperf (Apache-2.0).
    ``"dlib"``       dlib HOG face detector + the 5-point shape predictor of
                     ``face-recognition-models`` (``pip install auperf[dlib]``).
    ``"given"``      boxes and/or landmarks from the caller's own detector.

Every front end returns :class:`Faces` with the conventions of :mod:`auperf.frontend.base`
(pixel centres at integers, 5 points in the :mod:`auperf.align` order, pose in degrees).
See ``docs/frontend.md``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from ..errors import ParameterError
from .base import Faces, FrontEnd
from .pose import head_pose_from_rotation, landmarks5_from_mediapipe

__all__ = [
    "Faces",
    "FrontEnd",
    "create",
    "names",
    "register",
    "head_pose_from_rotation",
    "landmarks5_from_mediapipe",
    "MediaPipeFrontEnd",
    "DlibFrontEnd",
    "GivenFrontEnd",
    "locate_face_landmarker_model",
]

#: name -> "module:Class" (imported when first created) or a factory.
_REGISTRY: dict[str, str | Callable[..., FrontEnd]] = {
    "mediapipe": "._mediapipe:MediaPipeFrontEnd",
    "dlib": "._dlib:DlibFrontEnd",
    "given": "._given:GivenFrontEnd",
}
#: What ``"auto"`` resolves to.
AUTO = "mediapipe"

_LAZY = {
    "MediaPipeFrontEnd": "._mediapipe",
    "locate_face_landmarker_model": "._mediapipe",
    "DlibFrontEnd": "._dlib",
    "GivenFrontEnd": "._given",
}


def names() -> tuple[str, ...]:
    """Registered front end names (``"auto"`` is also accepted by :func:`create`)."""
    return tuple(_REGISTRY)


def register(name: str, factory: Callable[..., FrontEnd]) -> None:
    """Register a front end factory under ``name`` (``factory(**options) -> FrontEnd``)."""
    if not isinstance(name, str) or not name or name == "auto":
        raise ParameterError(f"name: expected a non-empty string other than 'auto', got {name!r}")
    if not callable(factory):
        raise ParameterError(f"factory: expected a callable, got {factory!r}")
    _REGISTRY[name] = factory


def create(name: str = "auto", **options: Any) -> FrontEnd:
    """Create a front end by name.

    Args:
        name: ``"auto"`` (= ``"mediapipe"``), ``"mediapipe"``, ``"dlib"``, ``"given"`` or a
            name added with :func:`register`. An explicit name that cannot be met raises; there
            is no silent fallback.
        **options: the front end's constructor arguments (e.g. ``num_faces``,
            ``min_detection_confidence``, ``min_presence_confidence`` for MediaPipe).

    Raises:
        ParameterError: unknown ``name``, or options the front end does not take.
        OptionalDependencyError: the front end's package is not installed (the message names
            the install command).
    """
    key = AUTO if name == "auto" else name
    if key not in _REGISTRY:
        raise ParameterError(f"name: expected one of {('auto', *_REGISTRY)}, got {name!r}")
    target = _REGISTRY[key]
    if isinstance(target, str):
        mod, cls = target.split(":")
        target = getattr(importlib.import_module(mod, __name__), cls)
    try:
        inspect.signature(target).bind(**options)
    except TypeError as exc:
        raise ParameterError(f"front end {key!r}: bad options {sorted(options)}: {exc}") from None
    return target(**options)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'auperf.frontend' has no attribute {name!r}")
