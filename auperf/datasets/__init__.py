"""Readers and writers of the public AU and expression dataset layouts, and label-noise models.

None of the public datasets can be shipped with auperf; users bring their copies, and auperf
reads them in their published layouts. Each layout has a writer too, so synthetic data can be
laid out exactly like the real thing and every reader is tested on it.

Layouts (see ``docs/datasets.md``): ``bp4d``, ``disfa``, ``emotionet``, ``rafdb``,
``affectnet``, ``ferplus``.

Example:
    >>> from auperf.datasets import open_dataset  # doctest: +SKIP
    >>> ds = open_dataset("/data/BP4D")
    >>> ds.au_ids, len(ds)
    >>> labels = ds.occurrence_matrix()          # (N, L) int8, -1 unknown
    >>> image = ds.load_image(0)                 # (H, W, 3) uint8 RGB
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..errors import DatasetError, ParameterError
from ._common import EXPRESSIONS, LANDMARKS_SIDECAR, DatasetReader, DatasetWriter, Sample
from .affectnet import AFFECTNET_CODES, AffectNetReader, AffectNetWriter
from .bp4d import BP4D_AUS, BP4D_INTENSITY_AUS, BP4DReader, BP4DWriter
from .disfa import DISFA_AUS, DISFA_BENCHMARK_AUS, DISFAReader, DISFAWriter
from .emotionet import EMOTIONET_AUS, EmotioNetReader, EmotioNetWriter
from .ferplus import FERPLUS_CLASSES, FERPlusReader, FERPlusWriter
from .noise import (
    ASYMMETRIC_EXPRESSION_MAP,
    NoisyLabels,
    flip_expressions,
    flip_labels,
    weak_model_labels,
)
from .rafdb import RAFDB_CODES, RAFDBReader, RAFDBWriter

__all__ = [
    "EXPRESSIONS",
    "LANDMARKS_SIDECAR",
    "Sample",
    "DatasetReader",
    "DatasetWriter",
    "DatasetError",
    "open_dataset",
    "available_layouts",
    "detect_layout",
    "BP4D_AUS",
    "BP4D_INTENSITY_AUS",
    "BP4DReader",
    "BP4DWriter",
    "DISFA_AUS",
    "DISFA_BENCHMARK_AUS",
    "DISFAReader",
    "DISFAWriter",
    "EMOTIONET_AUS",
    "EmotioNetReader",
    "EmotioNetWriter",
    "RAFDB_CODES",
    "RAFDBReader",
    "RAFDBWriter",
    "AFFECTNET_CODES",
    "AffectNetReader",
    "AffectNetWriter",
    "FERPLUS_CLASSES",
    "FERPlusReader",
    "FERPlusWriter",
    "NoisyLabels",
    "ASYMMETRIC_EXPRESSION_MAP",
    "flip_labels",
    "weak_model_labels",
    "flip_expressions",
]

logger = logging.getLogger("auperf")

_READERS: dict[str, type[DatasetReader]] = {
    "bp4d": BP4DReader,
    "disfa": DISFAReader,
    "emotionet": EmotioNetReader,
    "rafdb": RAFDBReader,
    "affectnet": AffectNetReader,
    "ferplus": FERPlusReader,
}


def available_layouts() -> tuple[str, ...]:
    """Names of the layouts :func:`open_dataset` understands."""
    return tuple(_READERS)


def detect_layout(root: str | Path) -> str:
    """The layout of the dataset under ``root``, from its folder structure alone.

    Raises:
        DatasetError: ``root`` is not a folder, matches no layout, or matches several.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("dataset root is not a folder", path=root)
    found = [name for name, cls in _READERS.items() if cls.detect(root)]
    if not found:
        raise DatasetError(
            f"matches none of the layouts {list(_READERS)} (see docs/datasets.md)", path=root
        )
    if len(found) > 1:
        raise DatasetError(f"matches several layouts {found}; pass layout= explicitly", path=root)
    logger.info("detected layout %r under %s", found[0], root)
    return found[0]


def open_dataset(root: str | Path, layout: str | None = None, **options: Any) -> DatasetReader:
    """Open the dataset under ``root`` and return its reader.

    Args:
        root: Dataset root folder.
        layout: One of :func:`available_layouts`, or ``None`` to detect it.
        **options: Passed to the reader (``aus=``, ``check_files=``, ...).

    Returns:
        The layout's :class:`DatasetReader`, already indexed and validated.

    Raises:
        ParameterError: an unknown layout name.
        DatasetError: see :func:`detect_layout` and the readers.
    """
    if layout is None:
        layout = detect_layout(root)
    elif layout not in _READERS:
        raise ParameterError(f"layout: expected one of {list(_READERS)}, got {layout!r}")
    return _READERS[layout](root, **options)
