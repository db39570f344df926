"""Ray: batch processing with Ray Data and an HTTP service with Ray Serve (``auperf[ray]``).

Batch (:func:`process`): videos, image folders or images (a list or glob patterns) to one
Parquet partition per input, ``<output>/<stem>.parquet/``, with the rows and columns of
``auperf detect`` (:mod:`auperf.video`); a pool of actors, each with one Detector, front end and
:class:`~auperf.video.VideoPipeline`; failed inputs recorded, dead workers restarted and their
input resumed, finished inputs skipped on a rerun. Details in :func:`process`.

Serving (:func:`serve`, ``auperf serve``): a Ray Serve deployment whose replicas each hold one
:class:`auperf.Detector`. Routes, relative to the route prefix:

=========== ======= ===================================================================
route       method  answer
=========== ======= ===================================================================
/detect     POST    AU results of the faces in the request (JSON, below)
/healthz    GET     200 ``{"status": "ok"}`` while the replica runs
/readyz     GET     200 ``{"status": "ready"}`` once the Detector has run its warm-up batch
/info       GET     model, AUs, thresholds, backend, limits and this replica's batch counts
=========== ======= ===================================================================

A request to ``/detect`` is a JSON object::

    {"images": ["<base64 PNG or JPEG>", ...],          # or "frames" (raw pixels), not both
     "frames": {"shape": [B, H, W, 3], "data": "<base64 of B*H*W*3 uint8 bytes>"},
     "frames_order": "RGB",                            # of raw frames; images decode to RGB
     "landmarks": [[[x, y], ...], ...],                 # (N, 5, 2) or (N, 68, 2) frame pixels
     "frame_index": [0, 0, 1, ...],                     # (N,), as Detector.detect
     "invalid": "raise"}                               # or "mark"

``landmarks`` may be left out when the deployment has a face front end (``frontend=``). The
answer holds ``faces``: one object per face with the columns of
:meth:`auperf.DetectionResult.to_records` (NaN written as ``null``), plus ``au_ids``,
``au_names``, ``thresholds`` and ``model``. Coordinates follow :mod:`auperf.detector`
(pixel centres at integers, origin at the centre of the top-left pixel).

Status codes: 400 the body is not JSON or a field is malformed (bad base64, an image that does
not decode, an unknown key), 413 the body exceeds ``max_request_bytes`` or the request holds
more than ``max_faces`` faces or ``max_frames`` frames, 422 the content is well formed but
invalid (shapes, NaN landmarks, degenerate faces, frame_index out of range: the auperf error's
message), 404/405 unknown route or method, 500 a failure of the backend. Requests are validated
one by one before they join a batch, so a bad request never fails the others.

Dynamic batching: valid requests wait at most ``batch_wait_timeout_s`` for up to
``max_batch_requests`` others (``ray.serve.batch``); frames of the same size are concatenated
and run as one ``Detector.detect`` call (split by the Detector into backend batches of
``batch_size`` faces); each request gets back its own slice, equal to what ``Detector.detect``
returns for it alone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    AuperfError,
    OptionalDependencyError,
    ParameterError,
    ShapeError,
    ValueRangeError,
)

__all__ = [
    "PayloadTooLargeError",
    "ServeHandle",
    "ServeLimits",
    "VideoStatus",
    "decode_request",
    "encode_request",
    "encode_result",
    "ensure_engine",
    "expand_inputs",
    "partition_names",
    "prepare_request",
    "process",
    "serve",
]

_log = logging.getLogger("auperf")
_REQUEST_KEYS = {"images", "frames", "frames_order", "landmarks", "frame_index", "invalid"}


class PayloadTooLargeError(ValueRangeError):
    """A request exceeds a size limit of the deployment (bytes, faces or frames)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise OptionalDependencyError(
            "auperf.integrations.ray: ray is not installed (pip install 'auperf[ray]')"
        ) from None
    return ray


def ensure_engine(
    model: str | Path | None, target: str, cache_dir: str | Path | None = None
) -> Any:
    """The TensorRT engine of ``model`` for ``target`` from this node's cache, built first if
    the cache lacks it (:func:`auperf.engine.build`). A lock file in the cache makes workers
    that start together on one node build it once; the others then find it cached.

    Returns:
        The :class:`~auperf.engine.EngineRecord` (``record.cached`` says whether it was built).
    """
    import fcntl

    from .. import engine, models

    manifest = models.load_manifest(model)
    cache = Path(cache_dir) if cache_dir is not None else engine.default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    lock = cache / f".{manifest.name}_{target}.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            return engine.build(manifest, target, cache)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _detector_for_worker(config: dict[str, Any]) -> Any:
    """The Detector of a Ray worker or replica from its config (threads, engine target)."""
    import auperf

    threads = config.get("threads")
    options = {k: dict(v) for k, v in (config.get("backend_options") or {}).items()}
    backend = config.get("backend", "auto")
    if threads:
        auperf.set_num_threads(int(threads))
        options.setdefault("onnxruntime", {"intra_op_num_threads": int(threads)})
    if config.get("engine_target"):
        record = ensure_engine(
            config.get("model"), config["engine_target"], config.get("cache_dir")
        )
        backend = "tensorrt"
        options.setdefault("tensorrt", {})["engine"] = record
    return auperf.Detector(
        config.get("model"),
        backend=backend,
        batch_size=int(config.get("batch_size", 64)),
        backend_options=options or None,
    )


# -- request decoding (no Ray needed) ------------------------------------------------------------
@dataclass(frozen=True)
class ServeLimits:
    """Size limits of one request.

    Attributes:
        max_request_bytes: largest body in bytes.
        max_faces: most faces (landmark sets) in one request.
        max_frames: most frames or images in one request.
        max_pixels: most pixels (``H * W``) per frame.
    """

    max_request_bytes: int = 32 << 20
    max_faces: int = 1024
    max_frames: int = 64
    max_pixels: int = 4096 * 4096

    def to_dict(self) -> dict[str, int]:
        return {
            "max_request_bytes": self.max_request_bytes,
            "max_faces": self.max_faces,
            "max_frames": self.max_frames,
            "max_pixels": self.max_pixels,
        }


@dataclass
class DecodedRequest:
    """A parsed ``/detect`` request: RGB ``(B, H, W, 3)`` uint8 frames and the face data."""

    frames: np.ndarray
    landmarks: np.ndarray | None
    frame_index: np.ndarray | None
    invalid: str = "raise"


def _b64(text: Any, name: str) -> bytes:
    if not isinstance(text, str):
        raise ParameterError(f"{name}: expected a base64 string, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParameterError(f"{name}: not valid base64") from None


def decode_request(body: bytes, limits: ServeLimits | None = None) -> DecodedRequest:
    """Parse and check the body of a ``/detect`` request (format in the module docstring).

    Raises:
        PayloadTooLargeError: a size limit is exceeded (HTTP 413).
        ParameterError: not JSON, an unknown key, bad base64, an image that does not decode,
            neither or both of ``images`` and ``frames`` (HTTP 400).
        ShapeError, DTypeError, ValueRangeError: well-formed but wrong content (HTTP 422).
    """
    import cv2

    limits = limits or ServeLimits()
    if len(body) > limits.max_request_bytes:
        raise PayloadTooLargeError(
            f"request: {len(body)} bytes, more than max_request_bytes={limits.max_request_bytes}"
        )
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"request: the body is not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ParameterError(f"request: expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _REQUEST_KEYS)
    if unknown:
        raise ParameterError(f"request: unknown keys {unknown}; known: {sorted(_REQUEST_KEYS)}")
    if ("images" in obj) == ("frames" in obj):
        raise ParameterError("request: give exactly one of 'images' (encoded) or 'frames' (raw)")
    order = obj.get("frames_order", "RGB")
    if order not in ("RGB", "BGR"):
        raise ValueRangeError(f"frames_order: expected 'RGB' or 'BGR', got {order!r}")
    invalid = obj.get("invalid", "raise")
    if invalid not in ("raise", "mark"):
        raise ValueRangeError(f"invalid: expected 'raise' or 'mark', got {invalid!r}")

    if "images" in obj:
        images = obj["images"]
        if not isinstance(images, list) or not images:
            raise ParameterError("images: expected a non-empty list of base64 strings")
        if len(images) > limits.max_frames:
            raise PayloadTooLargeError(
                f"images: {len(images)} images, more than max_frames={limits.max_frames}"
            )
        decoded = []
        for i, text in enumerate(images):
            raw = np.frombuffer(_b64(text, f"images[{i}]"), dtype=np.uint8)
            img = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
            if img is None:
                raise ParameterError(f"images[{i}]: not an image OpenCV can decode")
            if img.shape[0] * img.shape[1] > limits.max_pixels:
                raise PayloadTooLargeError(
                    f"images[{i}]: {img.shape[1]}x{img.shape[0]} pixels, more than "
                    f"max_pixels={limits.max_pixels}"
                )
            if decoded and img.shape != decoded[0].shape:
                raise ShapeError(
                    f"images[{i}]: shape {img.shape} differs from images[0] {decoded[0].shape}; "
                    "send images of one size per request"
                )
            decoded.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        frames = np.stack(decoded)
    else:
        spec = obj["frames"]
        if not isinstance(spec, dict) or set(spec) != {"shape", "data"}:
            raise ParameterError("frames: expected an object with 'shape' and 'data' only")
        shape = spec["shape"]
        if (
            not isinstance(shape, list)
            or len(shape) != 4
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
            or shape[3] != 3
        ):
            raise ShapeError(f"frames.shape: expected [B, H, W, 3] positive integers, got {shape}")
        if shape[0] > limits.max_frames:
            raise PayloadTooLargeError(
                f"frames.shape: {shape[0]} frames, more than max_frames={limits.max_frames}"
            )
        if shape[1] * shape[2] > limits.max_pixels:
            raise PayloadTooLargeError(
                f"frames.shape: {shape[2]}x{shape[1]} pixels, more than "
                f"max_pixels={limits.max_pixels}"
            )
        data = _b64(spec["data"], "frames.data")
        if len(data) != math.prod(shape):
            raise ShapeError(
                f"frames.data: {len(data)} bytes, expected {math.prod(shape)} for shape {shape}"
            )
        frames = np.frombuffer(data, dtype=np.uint8).reshape(shape)
        frames = np.ascontiguousarray(frames[..., ::-1] if order == "BGR" else frames)

    landmarks = fidx = None
    if obj.get("landmarks") is not None:
        try:
            landmarks = np.asarray(obj["landmarks"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ShapeError(
                "landmarks: expected a nested list of numbers of shape (N, 5, 2) or (N, 68, 2)"
            ) from None
        if landmarks.ndim != 3 or landmarks.shape[1:] not in ((5, 2), (68, 2)):
            if landmarks.size == 0:
                landmarks = np.zeros((0, 5, 2))
            else:
                raise ShapeError(
                    f"landmarks: expected shape (N, 5, 2) or (N, 68, 2), got {landmarks.shape}"
                )
        if landmarks.shape[0] > limits.max_faces:
            raise PayloadTooLargeError(
                f"landmarks: {landmarks.shape[0]} faces, more than max_faces={limits.max_faces}"
            )
    if obj.get("frame_index") is not None:
        raw_idx = obj["frame_index"]
        if not isinstance(raw_idx, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in raw_idx
        ):
            raise ShapeError("frame_index: expected a list of integers")
        fidx = np.asarray(raw_idx, dtype=np.int64).reshape(-1)
    return DecodedRequest(frames=frames, landmarks=landmarks, frame_index=fidx, invalid=invalid)


def encode_request(
    frames: np.ndarray,
    landmarks: Any = None,
    frame_index: Any = None,
    *,
    encoding: str = "raw",
    frames_order: str = "RGB",
    invalid: str = "raise",
) -> dict[str, Any]:
    """The JSON object of a ``/detect`` request (a client-side helper; send ``json.dumps``).

    Args:
        frames: ``(B, H, W, 3)`` uint8 frames in ``frames_order``.
        landmarks: ``(N, 5, 2)`` or ``(N, 68, 2)`` in frame pixels, or ``None``.
        frame_index: ``(N,)`` integers, or ``None`` (as ``Detector.detect``).
        encoding: ``"raw"`` (base64 pixels, exact) or ``"png"`` (lossless, smaller) or
            ``"jpeg"`` (lossy: results then differ from the raw frames').
        frames_order: ``"RGB"`` or ``"BGR"``.
        invalid: ``"raise"`` or ``"mark"``.
    """
    import cv2

    frames = np.ascontiguousarray(frames)
    obj: dict[str, Any] = {"invalid": invalid}
    if encoding == "raw":
        obj["frames"] = {
            "shape": list(frames.shape),
            "data": base64.b64encode(frames.tobytes()).decode("ascii"),
        }
        obj["frames_order"] = frames_order
    elif encoding in ("png", "jpeg"):
        images = []
        for f in frames:
            bgr = f if frames_order == "BGR" else f[..., ::-1]
            ok, buf = cv2.imencode("." + ("png" if encoding == "png" else "jpg"), bgr)
            if not ok:
                raise ParameterError(f"frames: OpenCV could not encode a frame as {encoding}")
            images.append(base64.b64encode(buf.tobytes()).decode("ascii"))
        obj["images"] = images
    else:
        raise ValueRangeError(f"encoding: expected 'raw', 'png' or 'jpeg', got {encoding!r}")
    if landmarks is not None:
        obj["landmarks"] = np.asarray(landmarks, dtype=np.float64).tolist()
    if frame_index is not None:
        obj["frame_index"] = [int(v) for v in np.asarray(frame_index).reshape(-1)]
    return obj


def encode_result(result: Any) -> list[dict[str, Any]]:
    """The faces of a :class:`~auperf.DetectionResult` as JSON-ready dicts (NaN -> ``None``)."""
    rows = result.to_records()
    for row in rows:
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v):
                row[k] = None
    return rows


def _slice_result(result: Any, start: int, stop: int, frame_offset: int) -> Any:
    from ..detector import DetectionResult

    return DetectionResult(
        probabilities=result.probabilities[start:stop],
        active=result.active[start:stop],
        au_ids=result.au_ids,
        au_names=result.au_names,
        frame_index=result.frame_index[start:stop] - frame_offset,
        boxes=result.boxes[start:stop],
        valid=result.valid[start:stop],
        thresholds=result.thresholds,
    )


def detect_batched(detector: Any, items: Sequence[DecodedRequest]) -> list[Any]:
    """Run checked requests as few ``Detector.detect`` calls as frame sizes allow.

    Requests whose frames have the same ``(H, W)`` are concatenated (frames, landmarks,
    ``frame_index`` shifted by the frames before them) and run in one call with
    ``invalid="mark"``; each request gets its own slice back, face and frame numbers counted
    from its own first face and frame. Each item needs ``landmarks`` (``(N, 5|68, 2)``, already
    reduced to 5 points or not) and a ``frame_index`` resolved against its frames. A call
    that fails is retried request by request, so one request's failure is its own.

    Returns:
        One :class:`~auperf.DetectionResult` or exception per item, in order.
    """
    from ..detector import to_five_points

    out: list[Any] = [None] * len(items)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        groups.setdefault(tuple(item.frames.shape[1:3]), []).append(i)
    for members in groups.values():
        frames = np.concatenate([items[i].frames for i in members])
        points = np.concatenate([to_five_points(items[i].landmarks) for i in members])
        offsets, starts, fidx = [], [], []
        f0 = n0 = 0
        for i in members:
            offsets.append(f0)
            starts.append(n0)
            fidx.append(items[i].frame_index + f0)
            f0 += items[i].frames.shape[0]
            n0 += len(items[i].frame_index)
        try:
            res = detector.detect(frames, points, np.concatenate(fidx), invalid="mark")
        except Exception:  # noqa: BLE001 - each request gets its own answer below
            for i in members:
                try:
                    out[i] = detector.detect(
                        items[i].frames, items[i].landmarks, items[i].frame_index, invalid="mark"
                    )
                except Exception as exc:  # noqa: BLE001
                    out[i] = exc
            continue
        for k, i in enumerate(members):
            stop = starts[k] + len(items[i].frame_index)
            out[i] = _slice_result(res, starts[k], stop, offsets[k])
    return out


def check_faces(item: DecodedRequest, template: np.ndarray) -> DecodedRequest:
    """Check a request's faces as ``Detector.detect`` would (without running the model):
    resolves ``frame_index``; with ``invalid="raise"``, NaN or degenerate landmarks raise.

    Raises:
        ShapeError, DTypeError, IndexRangeError, NonFiniteError, SingularMatrixError.
    """
    from ..align import estimate_similarity
    from .._aligned import frame_index_of as _frame_index, to_five_points
    from ..errors import NonFiniteError, SingularMatrixError

    points = to_five_points(item.landmarks)
    fidx = _frame_index(item.frame_index, points.shape[0], item.frames.shape[0])
    valid = np.isfinite(points).all(axis=(1, 2))
    if item.invalid == "raise":
        if not valid.all():
            bad = np.flatnonzero(~valid)
            raise NonFiniteError(
                f"landmarks: faces {bad[:10].tolist()} (frames {fidx[bad][:10].tolist()}) hold "
                "NaN or Inf coordinates"
            )
        if points.shape[0]:
            _, ok = estimate_similarity(points, template, return_status=True)
            if not ok.all():
                bad = np.flatnonzero(~ok)
                raise SingularMatrixError(
                    f"landmarks: faces {bad[:10].tolist()} (frames {fidx[bad][:10].tolist()}) "
                    "have (nearly) coincident points"
                )
    return DecodedRequest(item.frames, item.landmarks, fidx, item.invalid)


def prepare_request(
    body: bytes, limits: ServeLimits, template: np.ndarray, frontend: Any = None
) -> DecodedRequest:
    """Decode and check one ``/detect`` body, as a replica does before batching it.

    Without ``landmarks`` in the request, ``frontend`` (an :class:`auperf.frontend.FrontEnd`)
    finds the faces; its faces that cannot be aligned are marked invalid, not refused.

    Raises:
        ParameterError: as :func:`decode_request`, or no landmarks and no front end (400).
        PayloadTooLargeError: a size limit (413).
        AuperfError (ShapeError, NonFiniteError, ...): invalid content (422).
    """
    item = decode_request(body, limits)
    if item.landmarks is None:
        if frontend is None:
            raise ParameterError("landmarks: required (this deployment has no face front end)")
        faces = frontend.detect(item.frames)
        item = DecodedRequest(
            item.frames,
            np.asarray(faces.landmarks5, np.float64).reshape(-1, 5, 2),
            np.asarray(faces.frame_index, np.int64),
            "mark",
        )
    return check_faces(item, template)


# -- Ray Serve -------------------------------------------------------------------------------------
@dataclass
class ServeHandle:
    """A running deployment.

    Attributes:
        url: the HTTP address of the route prefix, e.g. ``http://127.0.0.1:8000/``.
        routes: the routes under it.
        app_name: the Ray Serve application name.
    """

    url: str
    routes: list[str] = field(default_factory=list)
    app_name: str = "auperf"
    _started_ray: bool = False

    def shutdown(self) -> None:
        """Delete the application (and shut Serve and Ray down if :func:`serve` started Ray)."""
        ray = _import_ray()
        from ray import serve as rserve

        rserve.delete(self.app_name)
        if self._started_ray:
            rserve.shutdown()
            ray.shutdown()


def _deployment_class() -> Any:
    """The Ray Serve deployment class (built on first use so that Ray is imported lazily)."""
    _import_ray()
    from ray import serve as rserve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    class AuperfDetectorDeployment:
        """One replica: one Detector, HTTP routes, dynamic batching of /detect requests."""

        def __init__(self, config: dict[str, Any]) -> None:
            self.detector = _detector_for_worker(config)
            self.limits = ServeLimits(**config.get("limits", {}))
            self.template = np.asarray(
                self.detector.manifest.input.alignment.points, dtype=np.float64
            )
            self.frontend = None
            if config.get("frontend"):
                from auperf import frontend

                self.frontend = frontend.create(config["frontend"])
            self._detect_batch.set_max_batch_size(int(config.get("max_batch_requests", 16)))
            self._detect_batch.set_batch_wait_timeout_s(
                float(config.get("batch_wait_timeout_s", 0.005))
            )
            # warm-up: one face through the whole pipeline before the replica says it is ready
            frame = np.full((1, 96, 96, 3), 128, np.uint8)
            self.detector.detect(frame, self.template[None] + 10.0)
            self.stats = {"batches": 0, "batched_requests": 0, "largest_batch": 0}
            self.ready = True

        def check_health(self) -> None:
            if self.detector.closed:
                raise RuntimeError("the Detector is closed")

        def _info(self) -> dict[str, Any]:
            d = self.detector
            return {
                "model": d.manifest.name,
                "au_ids": d.au_ids,
                "au_names": d.au_names,
                "thresholds": d.thresholds.tolist(),
                "backend": d.session.describe().provider,
                "batch_size": d.batch_size,
                "frontend": self.frontend.name if self.frontend is not None else None,
                "limits": self.limits.to_dict(),
                "stats": dict(self.stats),
            }

        @rserve.batch(max_batch_size=16, batch_wait_timeout_s=0.005)
        async def _detect_batch(self, items: list[DecodedRequest]) -> list[Any]:
            self.stats["batches"] += 1
            self.stats["batched_requests"] += len(items)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
            return await asyncio.to_thread(detect_batched, self.detector, items)

        def _prepare(self, body: bytes) -> DecodedRequest:
            return prepare_request(body, self.limits, self.template, self.frontend)

        async def __call__(self, request: Request) -> JSONResponse:
            path = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            if path in ("healthz", "readyz", "info"):
                if request.method != "GET":
                    return _error(405, f"{path}: use GET")
                if path == "healthz":
                    return JSONResponse({"status": "ok"})
                if path == "readyz":
                    ok = getattr(self, "ready", False) and not self.detector.closed
                    return JSONResponse(
                        {"status": "ready" if ok else "starting"}, status_code=200 if ok else 503
                    )
                return JSONResponse(self._info())
            if path != "detect":
                return _error(404, f"no route {request.url.path!r}; routes: {_ROUTES}")
            if request.method != "POST":
                return _error(405, "detect: use POST")
            length = request.headers.get("content-length")
            if length is not None and length.isdigit():
                if int(length) > self.limits.max_request_bytes:
                    return _error(
                        413,
                        f"request: {length} bytes, more than max_request_bytes="
                        f"{self.limits.max_request_bytes}",
                    )
            body = await request.body()
            try:
                item = await asyncio.to_thread(self._prepare, body)
            except PayloadTooLargeError as exc:
                return _error(413, str(exc), type(exc).__name__)
            except ParameterError as exc:
                return _error(400, str(exc), type(exc).__name__)
            except AuperfError as exc:
                return _error(422, str(exc), type(exc).__name__)
            result = await self._detect_batch(item)
            if isinstance(result, Exception):
                status = 422 if isinstance(result, AuperfError) else 500
                return _error(status, str(result), type(result).__name__)
            return JSONResponse(
                {
                    "model": self.detector.manifest.name,
                    "au_ids": list(result.au_ids),
                    "au_names": list(result.au_names),
                    "thresholds": result.thresholds.tolist(),
                    "faces": encode_result(result),
                }
            )

    def _error(status: int, message: str, kind: str = "HTTPError") -> JSONResponse:
        return JSONResponse({"error": kind, "message": message}, status_code=status)

    return AuperfDetectorDeployment


_ROUTES = ["/detect", "/healthz", "/readyz", "/info"]


def serve(
    model: str | Path | None = None,
    *,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    route_prefix: str = "/",
    name: str = "auperf",
    backend: str = "auto",
    backend_options: dict[str, dict[str, Any]] | None = None,
    num_replicas: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    batch_size: int = 64,
    max_batch_requests: int = 16,
    batch_wait_timeout_s: float = 0.005,
    max_request_bytes: int = 32 << 20,
    max_faces: int = 1024,
    max_frames: int = 64,
    max_pixels: int = 4096 * 4096,
    frontend: str | None = None,
    threads: int | None = None,
    engine_target: str | None = None,
    cache_dir: str | Path | None = None,
) -> ServeHandle:
    """Start the HTTP deployment (routes and payload in the module docstring).

    Args:
        model: a model folder or manifest path, or ``None`` for the demo model (it must exist
            at the same path on every node).
        address: the Ray cluster to join (``"auto"``, ``"ray://host:10001"``); ``None``
            joins a running local instance or starts one.
        host, port: where Ray Serve's HTTP proxy listens.
        route_prefix: the prefix of the routes.
        name: the Ray Serve application name.
        backend, backend_options: of each replica's :class:`auperf.Detector`.
        num_replicas: replicas; with ``num_gpus=1`` Ray places one per GPU.
        num_cpus, num_gpus: resources of each replica (fractions allowed).
        batch_size: faces per backend run.
        max_batch_requests, batch_wait_timeout_s: dynamic batching of requests.
        max_request_bytes, max_faces, max_frames, max_pixels: request limits (413 beyond).
        frontend: a face front end name (:func:`auperf.frontend.create`) used for requests
            without landmarks; ``None``: landmarks are required.
        threads: CPU threads of each replica's kernels and onnxruntime.
        engine_target, cache_dir: run a TensorRT engine of this target (``auperf build
            --list-targets``): each replica takes it from its node's engine cache, building it
            there first when absent (:func:`ensure_engine`: once per node).

    Returns:
        A :class:`ServeHandle` (``handle.shutdown()`` stops it).

    Raises:
        OptionalDependencyError: ray is not installed. ParameterError: bad arguments.
    """
    ray = _import_ray()
    from ray import serve as rserve

    for key, value in (
        ("num_replicas", num_replicas),
        ("batch_size", batch_size),
        ("max_batch_requests", max_batch_requests),
        ("max_request_bytes", max_request_bytes),
        ("max_faces", max_faces),
        ("max_frames", max_frames),
        ("max_pixels", max_pixels),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{key}: expected an integer >= 1, got {value!r}")
    if not (batch_wait_timeout_s >= 0):
        raise ParameterError(f"batch_wait_timeout_s: expected >= 0, got {batch_wait_timeout_s!r}")
    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    rserve.start(http_options={"host": host, "port": port})
    config = {
        "model": str(Path(model).resolve()) if model is not None else None,
        "backend": backend,
        "backend_options": backend_options,
        "batch_size": batch_size,
        "max_batch_requests": max_batch_requests,
        "batch_wait_timeout_s": batch_wait_timeout_s,
        "limits": ServeLimits(max_request_bytes, max_faces, max_frames, max_pixels).to_dict(),
        "frontend": frontend,
        "threads": threads,
        "engine_target": engine_target,
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
    }
    deployment = rserve.deployment(
        _deployment_class(),
        name="AuperfDetector",
        num_replicas=num_replicas,
        ray_actor_options={"num_cpus": num_cpus, "num_gpus": num_gpus},
        max_ongoing_requests=max(4 * max_batch_requests, 16),
    )
    rserve.run(deployment.bind(config), name=name, route_prefix=route_prefix, blocking=False)
    prefix = route_prefix.rstrip("/")
    _log.info("serve: %s replicas of %s at http://%s:%d%s", num_replicas, model, host, port, prefix)
    return ServeHandle(
        url=f"http://{host}:{port}{prefix}/",
        routes=[prefix + r for r in _ROUTES],
        app_name=name,
        _started_ray=started,
    )


# -- Ray Data batch processing -----------------------------------------------------------------
_GLOB_CHARS = set("*?[")


@dataclass
class VideoStatus:
    """What :func:`process` did with one input.

    Attributes:
        path: the input as given (after glob expansion).
        output: its Parquet folder (``<output>/<stem>.parquet``).
        status: ``"done"`` (processed to its end), ``"skipped"`` (done by an earlier run and
            unchanged since), ``"failed"`` (``error`` says why; frames written before the
            failure stay and the next run resumes after them).
        frames, faces: frames and face rows processed by this run (0 when skipped).
        seconds: wall time of this run on the input.
        start_frame: the frame this run started at (> 0 when it resumed).
        error: why it failed, or the bad frames' reasons (first few), else ``""``.
    """

    path: str
    output: str
    status: str
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    start_frame: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "output": self.output,
            "status": self.status,
            "frames": self.frames,
            "faces": self.faces,
            "seconds": self.seconds,
            "start_frame": self.start_frame,
            "error": self.error,
        }


def expand_inputs(paths: str | Path | Sequence[str | Path]) -> list[str]:
    """Inputs as a sorted-per-pattern list: glob patterns (``*``, ``?``, ``[``) are expanded,
    other entries kept as given (videos, image folders, images, URLs).

    Raises:
        ParameterError: no inputs, or a pattern that matches nothing.
    """
    import glob

    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[str] = []
    for p in items:
        s = str(p)
        if _GLOB_CHARS & set(s) and "://" not in s:
            hits = sorted(glob.glob(s, recursive=True))
            if not hits:
                raise ParameterError(f"paths: the pattern {s!r} matches no file")
            out += hits
        else:
            out.append(s)
    if not out:
        raise ParameterError("paths: expected at least one input")
    return out


def partition_names(inputs: Sequence[str]) -> list[str]:
    """One output folder name per input: ``<stem>.parquet``, ``<stem>_1.parquet`` for a
    repeated stem (the naming of ``auperf detect -o FOLDER --format parquet``)."""
    names: list[str] = []
    for spec in inputs:
        stem = Path(spec.rstrip("/\\")).stem if not spec.isdigit() else f"camera{spec}"
        if "://" in spec:
            stem = "stream"
        cand, k = f"{stem}.parquet", 1
        while cand in names:
            cand = f"{stem}_{k}.parquet"
            k += 1
        names.append(cand)
    return names


def _fingerprint(path: str) -> dict[str, Any]:
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {}


def _status_path(output: Path, partition: str) -> Path:
    return output / "_status" / (partition + ".json")


def _read_status(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _make_frontend(spec: Any, options: dict[str, Any]) -> Any:
    """A front end from a name (:func:`auperf.frontend.create`), ``"module:callable"``, or a
    callable returning one."""
    import importlib

    if callable(spec):
        return spec(**options)
    if isinstance(spec, str) and ":" in spec:
        mod, _, attr = spec.partition(":")
        return getattr(importlib.import_module(mod), attr)(**options)
    from .. import frontend

    return frontend.create(spec, **options)


class _VideoWorker:
    """A Ray Data actor: one Detector, one front end, one VideoPipeline; one input per row."""

    def __init__(self, config: dict[str, Any]) -> None:
        from auperf.video.pipeline import VideoPipeline

        self.config = config
        self.detector = _detector_for_worker(config)
        self.frontend = _make_frontend(config["frontend"], config.get("frontend_options") or {})
        self.pipeline = VideoPipeline(
            self.frontend,
            self.detector,
            chunk_size=int(config.get("chunk_size", 16)),
            queue_size=int(config.get("queue_size", 4)),
            smoothing=config.get("smoothing"),
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = [self._one(str(p), str(o), str(s)) for p, o, s in
                zip(batch["path"], batch["output"], batch["status_file"], strict=True)]  # fmt: skip
        return {k: np.asarray([r[k] for r in rows]) for k in rows[0]}

    def _one(self, path: str, output: str, status_file: str) -> dict[str, Any]:
        import time

        from auperf.video.sources import open_source
        from auperf.video.writers import ParquetWriter

        t0 = time.perf_counter()
        status = VideoStatus(path=path, output=output, status="failed")
        # Count the attempts of this run on this input: a worker that died part way left
        # "running" behind. Past max_retries the input is recorded as failed, not retried.
        prev = _read_status(Path(status_file)) or {}
        run_id = self.config.get("run_id")
        same_run = prev.get("status") == "running" and prev.get("run_id") == run_id
        attempt = int(prev.get("attempt", 0)) + 1 if same_run else 1
        if attempt > int(self.config.get("max_retries", 3)) + 1:
            status.error = f"the worker died {attempt - 1} times on this input; not retried"
            record = dict(status.to_dict(), input=_fingerprint(path), run_id=run_id)
            _write_json_atomic(Path(status_file), record)
            return status.to_dict()
        _write_json_atomic(
            Path(status_file),
            {"path": path, "status": "running", "run_id": run_id, "attempt": attempt},
        )
        try:
            source = open_source(path, decoder=self.config.get("decoder", "auto"))
            with ParquetWriter(output, self.pipeline.columns, resume=True) as writer:
                summary = self.pipeline.run(
                    source, writer, progress=False, max_frames=self.config.get("max_frames")
                )
            status.frames, status.faces = summary.frames, summary.faces
            status.start_frame = summary.start_frame
            problems = [summary.error] if summary.error else []
            problems += [f"frame {f}: {why}" for f, _, why in summary.bad_frames[:5]]
            if summary.skipped_files:
                problems.append(f"{len(summary.skipped_files)} files are not images")
            status.error = "; ".join(problems)
            status.status = "failed" if summary.error else "done"
        except Exception as exc:  # noqa: BLE001 - one input's failure is recorded, the run goes on
            status.error = f"{type(exc).__name__}: {exc}"
        status.seconds = time.perf_counter() - t0
        record = status.to_dict()
        record["input"] = _fingerprint(path)
        _write_json_atomic(Path(status_file), record)
        return status.to_dict()


def process(
    paths: str | Path | Sequence[str | Path],
    output: str | Path,
    *,
    address: str | None = None,
    model: str | Path | None = None,
    backend: str = "auto",
    backend_options: dict[str, dict[str, Any]] | None = None,
    frontend: Any = "auto",
    frontend_options: dict[str, Any] | None = None,
    num_workers: int = 1,
    num_cpus_per_worker: float = 1.0,
    num_gpus_per_worker: float = 0.0,
    chunk_size: int = 16,
    queue_size: int = 4,
    smoothing: float | None = None,
    decoder: str = "auto",
    threads: int | None = None,
    max_frames: int | None = None,
    max_retries: int = 3,
    engine_target: str | None = None,
    cache_dir: str | Path | None = None,
) -> list[VideoStatus]:
    """Process videos, image folders or images with Ray Data into partitioned Parquet.

    Each input becomes one partition, ``<output>/<stem>.parquet/part-<first frame>.parquet``,
    with the rows and columns ``auperf detect INPUT -o <stem>.parquet`` writes (same
    :class:`~auperf.video.VideoPipeline` and :class:`~auperf.video.ParquetWriter`: one row per
    frame and face, track ids, ``docs/video.md``). ``pyarrow.dataset.dataset(output)`` or
    ``pandas.read_parquet`` on a partition reads it back.

    Execution: the inputs form a Ray Dataset of one row per input; ``map_batches`` runs them
    on a pool of ``num_workers`` actors, each holding one Detector, one front end and one
    pipeline (built once per actor; with ``engine_target`` the TensorRT engine comes from the
    node's engine cache and is built once per node when absent, see :func:`ensure_engine`).
    Inside an actor, decoding runs ahead of detection in a thread with at most ``queue_size``
    chunks of ``chunk_size`` frames, so memory per actor is bounded; Ray Data keeps at most
    ``num_workers`` inputs in flight.

    Failures and reruns: an input that fails (cannot be opened, a truncated video, a front end
    error) is recorded with its error and the others go on. A worker that dies (killed, out of
    memory) is restarted and its input retried up to ``max_retries`` times; the retry resumes
    after the last complete part, so no row is lost or written twice. A status file per input,
    ``<output>/_status/<stem>.parquet.json``, records the outcome and the input's size and
    mtime; a rerun skips inputs that are done and unchanged, and resumes the others.

    Args:
        paths: inputs, or glob patterns (``"videos/**/*.mp4"``).
        output: the output folder.
        address: the Ray cluster (``"auto"``, ``"ray://host:10001"``); ``None`` joins a local
            instance that is running or starts one.
        model, backend, backend_options: of each worker's :class:`auperf.Detector`.
        frontend, frontend_options: a front end name (:func:`auperf.frontend.create`), a
            ``"module:callable"`` string, or a picklable callable returning a front end.
        num_workers: actors (one per GPU with ``num_gpus_per_worker=1``).
        num_cpus_per_worker, num_gpus_per_worker: resources of each actor.
        chunk_size, queue_size, smoothing: as ``auperf detect``.
        decoder: ``"auto"``, ``"av"`` or ``"opencv"``.
        threads: CPU threads of each worker's kernels and onnxruntime.
        max_frames: process at most this many frames of each input.
        max_retries: how many times an input is retried after its worker died on it (Ray
            restarts the worker; past this count the input is recorded as failed).
        engine_target, cache_dir: run a TensorRT engine of this target: each worker takes it
            from its node's engine cache, building it there first when absent
            (:func:`ensure_engine`: once per node).

    Returns:
        One :class:`VideoStatus` per input, in input order.

    Raises:
        OptionalDependencyError: ray is not installed. ParameterError: bad arguments.
    """
    ray = _import_ray()
    inputs = expand_inputs(paths)
    for key, value in (("num_workers", num_workers), ("chunk_size", chunk_size),
                       ("queue_size", queue_size), ("max_retries", max_retries + 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ParameterError(f"{key}: expected an integer >= 1, got {value!r}")
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ParameterError(f"output: {out} is a file; expected a folder")
    out.mkdir(parents=True, exist_ok=True)
    parts = partition_names(inputs)
    results: dict[int, VideoStatus] = {}
    todo = []
    for i, (path, part) in enumerate(zip(inputs, parts, strict=True)):
        prev = _read_status(_status_path(out, part))
        if (
            prev is not None
            and prev.get("status") == "done"
            and prev.get("path") == path
            and prev.get("input") == _fingerprint(path)
            and (out / part).is_dir()
        ):
            results[i] = VideoStatus(path=path, output=str(out / part), status="skipped")
            continue
        todo.append(
            {
                "index": i,
                "path": path,
                "output": str(out / part),
                "status_file": str(_status_path(out, part)),
            }
        )
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        config = {
            "model": str(Path(model).resolve()) if model is not None else None,
            "backend": backend,
            "backend_options": backend_options,
            "frontend": frontend,
            "frontend_options": frontend_options,
            "chunk_size": chunk_size,
            "queue_size": queue_size,
            "smoothing": smoothing,
            "decoder": decoder,
            "threads": threads,
            "max_frames": max_frames,
            "max_retries": max_retries,
            "run_id": uuid.uuid4().hex,
            "engine_target": engine_target,
            "cache_dir": str(cache_dir) if cache_dir is not None else None,
        }
        ds = ray.data.from_items(todo, override_num_blocks=len(todo))
        ds = ds.map_batches(
            _VideoWorker,
            fn_constructor_kwargs={"config": config},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(num_workers, len(todo))),
            num_cpus=num_cpus_per_worker,
            num_gpus=num_gpus_per_worker,
        )  # Ray Data restarts dead actors and retries their tasks; _VideoWorker bounds it
        by_path = {row["output"]: row for row in ds.take_all()}
        for item in todo:
            row = by_path.get(item["output"])
            if row is None:  # the worker never answered (retries exhausted)
                results[item["index"]] = VideoStatus(
                    path=item["path"], output=item["output"], status="failed",
                    error="no result from the worker (retries exhausted)",
                )  # fmt: skip
                continue
            results[item["index"]] = VideoStatus(
                path=str(row["path"]),
                output=str(row["output"]),
                status=str(row["status"]),
                frames=int(row["frames"]),
                faces=int(row["faces"]),
                seconds=float(row["seconds"]),
                start_frame=int(row["start_frame"]),
                error=str(row["error"]),
            )
    statuses = [results[i] for i in range(len(inputs))]
    for s in statuses:
        if s.status == "failed":
            _log.warning("process: %s failed: %s", s.path, s.error)
    return statuses
