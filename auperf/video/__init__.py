"""Video and image streams to AU tables: sources, decode-ahead, tracking, writers, pipeline.

    from auperf.video import VideoPipeline, open_source, open_writer

    with auperf.Detector() as det, auperf.frontend.create("auto") as fe:
        pipe = VideoPipeline(fe, det, smoothing=0.6)
        src = open_source("clip.mp4")
        with open_writer("clip.csv", pipe.columns, resume=True) as out:
            summary = pipe.run(src, out)

See ``docs/video.md`` for the output columns, units, resume and error behaviour.
"""

from __future__ import annotations

from .pipeline import RunSummary, VideoPipeline, result_columns
from .prefetch import prefetch_chunks
from .sources import (
    ArraySource,
    CameraSource,
    Frame,
    ImageFileSource,
    ImageFolderSource,
    Source,
    VideoFileSource,
    open_source,
)
from .tracking import Tracker, TrackSmoother, box_iou, count_id_switches
from .writers import CsvWriter, ParquetWriter, open_writer, read_results

__all__ = [
    "ArraySource",
    "CameraSource",
    "CsvWriter",
    "Frame",
    "ImageFileSource",
    "ImageFolderSource",
    "ParquetWriter",
    "RunSummary",
    "Source",
    "TrackSmoother",
    "Tracker",
    "VideoFileSource",
    "VideoPipeline",
    "box_iou",
    "count_id_switches",
    "open_source",
    "open_writer",
    "prefetch_chunks",
    "read_results",
    "result_columns",
]
