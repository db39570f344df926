"""Re-export of :class:`auperf.errors.DatasetError` for the dataset modules."""

from __future__ import annotations

from ..errors import DatasetError

__all__ = ["DatasetError"]
