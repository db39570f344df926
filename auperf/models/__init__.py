"""Where models live and how their files are named.

A model is a folder (or a manifest file) holding:

- ``<name>.json``: the manifest (:mod:`auperf.manifest`);
- ``<name>.onnx``: the ONNX graph the manifest's ``model.file`` names (its sha256 is in the
  manifest);
- ``<name>.safetensors``: optional, the trained network's weights for the torch backend, named
  after the ONNX file (same stem, suffix ``.safetensors``; see :func:`weights_path`). It holds
  the state dict of :class:`auperf.nets.m0.M0Net` (keys ``views.<v>.backbone.*``,
  ``views.<v>.clean_head.*``; training-only ``views.<v>.noisy_head.*`` keys are allowed and
  ignored), as ``training.common.checkpoint.save_weights`` writes it;
- anything else (a model card) is ignored.

A folder must hold exactly one ``*.json`` file, the manifest.

The shipped demo model lives in :data:`DEMO_DIR` (``auperf/models/demo/``); it is the default
of :class:`auperf.Detector`. Beside it: ``m2-demo/`` (the default of
:class:`auperf.ExpressionClassifier`), ``m3/`` (imitator, parser, predictor and the
loss-and-gradient graph of :class:`auperf.Estimator`, one folder each), ``m4-demo/`` (the
default of :class:`auperf.Features`) and ``teacher_thresholds.json`` (the calibrated
thresholds of :mod:`auperf.teacher`). Every model folder holds its own ``MODEL_CARD.md`` or
is described by its method's page in ``docs/``.
"""

from __future__ import annotations

from pathlib import Path

from ..manifest import Manifest

__all__ = [
    "DEMO_DIR",
    "WEIGHTS_SUFFIX",
    "default_model_dir",
    "find_manifest",
    "load_manifest",
    "weights_path",
]

#: The shipped demo model's folder.
DEMO_DIR = Path(__file__).resolve().parent / "demo"
#: Suffix of the torch weights file beside a model's ONNX file.
WEIGHTS_SUFFIX = ".safetensors"


def default_model_dir() -> Path:
    """The folder :class:`auperf.Detector` loads when given no model (:data:`DEMO_DIR`)."""
    return DEMO_DIR


def find_manifest(model: str | Path) -> Path:
    """The manifest file of a model given as a folder or as the manifest file itself.

    Args:
        model: a folder holding exactly one ``*.json`` manifest, or a ``.json`` file.

    Returns:
        The manifest's path.

    Raises:
        ModelNotFoundError: the path does not exist, or the folder holds no or several
            ``*.json`` files.
    """
    from ..errors import ModelNotFoundError

    path = Path(model)
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) == 1:
            return found[0]
        what = "no" if not found else f"{len(found)} ({[p.name for p in found]})"
        raise ModelNotFoundError(
            f"model: {path} holds {what} *.json manifests; expected exactly one"
        )
    raise ModelNotFoundError(f"model: {path} does not exist")


def load_manifest(model: str | Path | Manifest | None = None) -> Manifest:
    """Load a model's manifest.

    Args:
        model: a folder, a manifest file, a loaded :class:`Manifest` (returned as is), or
            ``None`` for the shipped demo model (:data:`DEMO_DIR`).

    Returns:
        The validated manifest (``source`` set, so relative file names resolve).

    Raises:
        ModelNotFoundError: no model there; for ``None``, the demo model is not installed.
        ManifestError, ManifestVersionError: the manifest is invalid or from a newer auperf.
    """
    from ..errors import ModelNotFoundError

    if isinstance(model, Manifest):
        return model
    if model is None:
        if not DEMO_DIR.is_dir() or not any(DEMO_DIR.glob("*.json")):
            raise ModelNotFoundError(
                f"model: the shipped demo model is not installed (no manifest in {DEMO_DIR}); "
                "pass model=<folder or manifest .json> of an exported model"
            )
        model = DEMO_DIR
    if not isinstance(model, (str, Path)):
        raise ModelNotFoundError(
            f"model: expected a folder, a manifest path or a Manifest, got {type(model).__name__}"
        )
    return Manifest.load(find_manifest(model))


def weights_path(manifest: Manifest) -> Path:
    """The torch weights file of a model: the manifest's ``model.weights.file`` where it names
    one (relative to the manifest's folder), else the ONNX file with the suffix ``.safetensors``."""
    spec = manifest.model.weights
    if spec is not None:
        return manifest.model_path().parent / spec.file
    return manifest.model_path().with_suffix(WEIGHTS_SUFFIX)
