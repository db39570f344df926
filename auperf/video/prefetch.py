"""Decode in a background thread into a bounded queue of chunks.

:func:`prefetch_chunks` runs a source's iterator in a daemon thread and hands over lists of at
most ``chunk_size`` frames through a ``queue.Queue(maxsize=queue_size)``: the decoder is at
most ``queue_size`` chunks ahead of the consumer, so memory stays flat on long videos, and
decoding (FFmpeg releases the GIL) overlaps inference.

An exception raised by the source is handed over after the frames decoded before it and
re-raised in the consumer at that point. Closing the generator (or leaving a ``for`` loop
early, e.g. on ``KeyboardInterrupt``) stops the thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import numpy as np

from ..errors import ParameterError
from .sources import Frame, Source

__all__ = ["Chunk", "prefetch_chunks"]

_END = object()


class Chunk(list):
    """A list of consecutive :class:`Frame` objects; when every frame decoded and all share one
    shape, :attr:`batch` is their ``(B, H, W, 3)`` stack (made in the decode thread) and each
    ``frame.image`` is a view into it; otherwise :attr:`batch` is ``None``."""

    batch: np.ndarray | None = None


def _stacked(frames: list[Frame]) -> Chunk:
    chunk = Chunk(frames)
    shapes = {f.image.shape if f.image is not None else None for f in frames}
    if len(shapes) == 1 and None not in shapes:
        batch = np.stack([f.image for f in frames])
        for k, f in enumerate(frames):
            f.image = batch[k]
        chunk.batch = batch
    return chunk


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch_chunks(
    source: Source,
    chunk_size: int = 16,
    queue_size: int = 4,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[Chunk]:
    """Yield :class:`Chunk` lists of up to ``chunk_size`` consecutive frames of ``source``
    (from ``start``), stacked into one array in the decode thread where their shapes agree.

    Args:
        source: the frame source.
        chunk_size: frames per chunk (>= 1).
        queue_size: chunks decoded ahead at most (>= 1).
        start: first frame index to yield.
        stop: yield only frames with index < ``stop`` (``None``: to the end).

    Raises:
        Whatever the source raises, after the chunks decoded before it.
    """
    for name, v in (("chunk_size", chunk_size), ("queue_size", queue_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ParameterError(f"{name}: expected an integer >= 1, got {v!r}")
    q: queue.Queue = queue.Queue(maxsize=queue_size)
    halt = threading.Event()

    def put(item: object) -> bool:
        while not halt.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        chunk: list[Frame] = []
        try:
            for fr in source.frames(start):
                if stop is not None and fr.index >= stop:
                    break
                chunk.append(fr)
                if len(chunk) == chunk_size:
                    if not put(_stacked(chunk)):
                        return
                    chunk = []
            if chunk and not put(_stacked(chunk)):
                return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            if chunk and not put(_stacked(chunk)):
                return
            put(_Failure(exc))

    thread = threading.Thread(target=work, name=f"auperf-decode-{source.name}", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        halt.set()
        thread.join(timeout=5.0)
