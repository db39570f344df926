"""Start M0's backbones from pretrained weights (the run file's ``backbone_init``).

The file is safetensors (never pickle). Accepted contents, tried in this order:

- an auperf training checkpoint (metadata ``format = auperf-checkpoint``; its ``model.``
  prefix is removed first) of a network whose backbone is under ``encoder.backbone.`` (the
  M4 TCAE) or ``backbone.``;
- exported weights with keys under ``encoder.backbone.`` or ``backbone.`` (the M4 encoder
  export, ``<name>.safetensors``);
- a bare backbone state dict.

Every view's backbone receives the same tensors, strictly (every key, every shape). The heads
keep their fresh initialisation.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from auperf.errors import WeightsError

__all__ = ["backbone_state", "load_backbone_init"]

_log = logging.getLogger("auperf.training")
_PREFIXES = ("encoder.backbone.", "backbone.")


def backbone_state(path: str | Path) -> dict:
    """The backbone tensors of a safetensors file (module docstring), keys without prefix.

    Raises:
        WeightsError: missing or unreadable file.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"backbone_init: {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises several untyped errors
        raise WeightsError(
            f"backbone_init: {path} is not a readable safetensors file: {exc}"
        ) from None
    if meta.get("format") == "auperf-checkpoint":
        tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    for prefix in _PREFIXES:
        picked = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if picked:
            return picked
    return tensors


def load_backbone_init(net: nn.Module, path: str | Path) -> int:
    """Copy the backbone of ``path`` into every view backbone of ``net`` (an
    :class:`auperf.nets.m0.M0Net` or the single-view baseline).

    Returns:
        The number of tensors loaded per view.

    Raises:
        WeightsError: the file is missing or unreadable, or its backbone does not fit (names
            the missing/unexpected keys or the size mismatch).
    """
    state = backbone_state(path)
    views = getattr(net, "views", None)
    if views is None:
        raise WeightsError(f"backbone_init: {type(net).__name__} has no views to initialise")
    for i, view in enumerate(views):
        try:
            result = view.backbone.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split("\n")[1:3]).strip()
            raise WeightsError(
                f"backbone_init: {path} does not fit view {i}'s backbone: {detail}"
            ) from None
        if result.missing_keys or result.unexpected_keys:
            raise WeightsError(
                f"backbone_init: {path} does not fit view {i}'s backbone "
                f"{getattr(net, 'backbone_name', '')!r}: missing {result.missing_keys[:5]} "
                f"({len(result.missing_keys)}), unexpected {result.unexpected_keys[:5]} "
                f"({len(result.unexpected_keys)})"
            )
    _log.info("backbone_init: %d tensors from %s into %d view(s)", len(state), path, len(views))
    return len(state)
