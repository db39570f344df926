"""Model manifests: what a model file is, what it expects and what it returns.

Every model auperf runs comes with a manifest, a JSON file beside the model. Backends and
pipelines read the task, the AU list, the input preprocessing and the meaning of each output
from it; nothing is guessed from tensor shapes or node names. The format is versioned
(:data:`FORMAT_VERSION`); a manifest written by a newer library is refused, not half-read.

Format (version 1); every key is required unless marked optional, unknown keys are refused::

    {
      "format_version": 1,
      "name": "m0-smallnet-synth",             # short identifier
      "method": "M0",                          # M0 ... M4 (see docs/METHODS.md)
      "task": "au_occurrence",                 # au_occurrence | au_intensity | expression
                                               #   | au_parameters | features
      "description": "...",                    # optional, free text
      "created": "2026-11-25T12:00:00+00:00",  # ISO 8601 with time zone
      "aus": [{"id": 1, "name": "inner brow raiser"}, ...],   # FACS numbers, unique
      "classes": ["neutral", ...],             # optional (expression models)
      "thresholds": [0.5, ...],                # one per AU, in [0, 1]: active iff p >= threshold
      "input": {
        "name": "image",
        "size": [224, 224],                    # crop height, width in pixels
        "channels": 3,
        "colour_order": "RGB",                 # RGB | BGR
        "mean": [123.675, 116.28, 103.53],     # per channel, in 8-bit pixel units (0-255):
        "std": [58.395, 57.12, 57.375],        #   value = (pixel - mean) / std, all std > 0
        "layout": "NCHW",                      # NCHW | NHWC
        "dtype": "float32",                    # float32 | float16 | uint8
        "alignment": {
          "template": "arcface5_256_centre224",  # template name
          "points": [[x, y], ... 5 points]       # in crop pixels, auperf.align point order
        }
      },
      "outputs": [
        {"name": "logits", "shape": ["batch", 2, 12], "dtype": "float32",
         "meaning": "clean logits of both views, view axis 1"}
      ],                                       # shape items: int > 0 or a symbolic name
      "postprocess": {"kind": "fuse_views", "input": "logits"},
                                               # fuse_views: p = sigmoid(mean over axis 1)
                                               # sigmoid | softmax | none
      "model": {"file": "m0.onnx", "format": "onnx", "opset": 17, "sha256": "<64 hex>",
                "weights": {"file": "m0.safetensors", "format": "safetensors",
                            "sha256": "<64 hex>"}},    # weights: optional (torch backend)
      "training": {                            # optional sections inside are free-form
        "data": "what it was trained on",
        "metrics": {"mean_f1": 0.61},          # name -> number, null, or nested mapping
        "config": {...},                       # optional, the run configuration
        "auperf_version": "0.1.0"
      }
    }

Errors: :class:`ManifestError` (a ``ValueError``) names the file and the field, e.g.
``m0.json: input.std[1]: expected a number > 0, got 0``; :class:`ManifestVersionError` for a
format version newer than this library's.

Example::

    m = Manifest.load("models/m0.json")
    m.verify_model()                 # sha256 of the ONNX file
    m.au_ids, m.thresholds, m.input.size
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError, ManifestVersionError

__all__ = [
    "FORMAT_VERSION",
    "TASKS",
    "POSTPROCESS_KINDS",
    "ManifestError",
    "ManifestVersionError",
    "AUSpec",
    "AlignmentSpec",
    "InputSpec",
    "OutputSpec",
    "PostprocessSpec",
    "ModelFileSpec",
    "WeightsFileSpec",
    "TrainingInfo",
    "Manifest",
    "sha256_file",
]

FORMAT_VERSION = 1
TASKS = ("au_occurrence", "au_intensity", "expression", "au_parameters", "features")
POSTPROCESS_KINDS = ("fuse_views", "sigmoid", "softmax", "none")
_COLOUR_ORDERS = ("RGB", "BGR")
_LAYOUTS = ("NCHW", "NHWC")
_DTYPES = ("float32", "float16", "uint8")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# -- field readers: each names the field it checks -------------------------------------------
def _fail(path: str, expected: str, got: Any) -> ManifestError:
    return ManifestError(f"{path}: expected {expected}, got {got!r}")


def _mapping(v: Any, path: str, required: set[str], optional: set[str] = frozenset()) -> dict:
    if not isinstance(v, dict):
        raise _fail(path, "a JSON object", v)
    for key in v:
        if key not in required and key not in optional:
            allowed = sorted(required | set(optional))
            raise ManifestError(f"{path}.{key}: unknown field; allowed: {allowed}")
    for key in sorted(required):
        if key not in v:
            raise ManifestError(f"{path}.{key}: missing")
    return v


def _str(v: Any, path: str, choices: tuple[str, ...] | None = None, nonempty: bool = True) -> str:
    if not isinstance(v, str) or (nonempty and not v):
        raise _fail(path, "a non-empty string" if nonempty else "a string", v)
    if choices is not None and v not in choices:
        raise _fail(path, f"one of {list(choices)}", v)
    return v


def _int(v: Any, path: str, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail(path, "an integer", v)
    if minimum is not None and v < minimum:
        raise _fail(path, f"an integer >= {minimum}", v)
    return v


def _num(
    v: Any, path: str, lo: float | None = None, hi: float | None = None, positive: bool = False
) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(path, "a finite number", v)
    if positive and v <= 0:
        raise _fail(path, "a number > 0", v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _fail(path, f"a number in [{lo}, {hi}]", v)
    return float(v)


def _list(v: Any, path: str, length: int | None = None, nonempty: bool = False) -> list:
    if not isinstance(v, list):
        raise _fail(path, "a JSON array", v)
    if length is not None and len(v) != length:
        raise ManifestError(f"{path}: expected {length} items, got {len(v)}")
    if nonempty and not v:
        raise ManifestError(f"{path}: expected at least one item, got none")
    return v


def _json_value(v: Any, path: str) -> Any:
    """Free-form JSON (numbers finite)."""
    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise _fail(path, "a finite number or null", v)
        return v
    if isinstance(v, list):
        return [_json_value(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, dict):
        return {str(k): _json_value(x, f"{path}.{k}") for k, x in v.items()}
    raise _fail(path, "a JSON value", v)


# -- sections --------------------------------------------------------------------------------
@dataclass(frozen=True)
class AUSpec:
    """One action unit: FACS number and name."""

    id: int
    name: str

    @classmethod
    def from_dict(cls, d: Any, path: str) -> AUSpec:
        d = _mapping(d, path, {"id", "name"})
        return cls(id=_int(d["id"], f"{path}.id", 0), name=_str(d["name"], f"{path}.name"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class AlignmentSpec:
    """The alignment template: its name and its 5 points ``(x, y)`` in crop pixels."""

    template: str
    points: tuple[tuple[float, float], ...]

    @classmethod
    def from_dict(cls, d: Any, path: str) -> AlignmentSpec:
        d = _mapping(d, path, {"template", "points"})
        pts = _list(d["points"], f"{path}.points", length=5)
        points = []
        for i, p in enumerate(pts):
            p = _list(p, f"{path}.points[{i}]", length=2)
            points.append(
                (_num(p[0], f"{path}.points[{i}][0]"), _num(p[1], f"{path}.points[{i}][1]"))
            )
        return cls(template=_str(d["template"], f"{path}.template"), points=tuple(points))

    def to_dict(self) -> dict[str, Any]:
        return {"template": self.template, "points": [list(p) for p in self.points]}


@dataclass(frozen=True)
class InputSpec:
    """The model input and how to make it from an aligned crop.

    Attributes:
        name: input tensor name.
        size: ``(height, width)`` of the crop.
        channels: colour channels (3).
        colour_order: ``"RGB"`` or ``"BGR"``.
        mean, std: per channel, in 8-bit pixel units: ``value = (pixel - mean) / std``.
        layout: ``"NCHW"`` or ``"NHWC"``.
        dtype: ``"float32"``, ``"float16"`` or ``"uint8"``.
        alignment: the 5-point template the crop is aligned to.
    """

    name: str
    size: tuple[int, int]
    channels: int
    colour_order: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str
    dtype: str
    alignment: AlignmentSpec

    _KEYS = frozenset(
        {"name", "size", "channels", "colour_order", "mean", "std", "layout", "dtype", "alignment"}
    )

    @classmethod
    def from_dict(cls, d: Any, path: str) -> InputSpec:
        d = _mapping(d, path, set(cls._KEYS))
        size = _list(d["size"], f"{path}.size", length=2)
        channels = _int(d["channels"], f"{path}.channels", 1)
        mean = _list(d["mean"], f"{path}.mean", length=channels)
        std = _list(d["std"], f"{path}.std", length=channels)
        return cls(
            name=_str(d["name"], f"{path}.name"),
            size=(_int(size[0], f"{path}.size[0]", 1), _int(size[1], f"{path}.size[1]", 1)),
            channels=channels,
            colour_order=_str(d["colour_order"], f"{path}.colour_order", _COLOUR_ORDERS),
            mean=tuple(_num(v, f"{path}.mean[{i}]") for i, v in enumerate(mean)),
            std=tuple(_num(v, f"{path}.std[{i}]", positive=True) for i, v in enumerate(std)),
            layout=_str(d["layout"], f"{path}.layout", _LAYOUTS),
            dtype=_str(d["dtype"], f"{path}.dtype", _DTYPES),
            alignment=AlignmentSpec.from_dict(d["alignment"], f"{path}.alignment"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": list(self.size),
            "channels": self.channels,
            "colour_order": self.colour_order,
            "mean": list(self.mean),
            "std": list(self.std),
            "layout": self.layout,
            "dtype": self.dtype,
            "alignment": self.alignment.to_dict(),
        }


@dataclass(frozen=True)
class OutputSpec:
    """One model output: name, shape (ints and symbolic names such as ``"batch"``), dtype and
    what it means."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    meaning: str

    @classmethod
    def from_dict(cls, d: Any, path: str) -> OutputSpec:
        d = _mapping(d, path, {"name", "shape", "dtype", "meaning"})
        shape = []
        for i, s in enumerate(_list(d["shape"], f"{path}.shape", nonempty=True)):
            shape.append(
                _str(s, f"{path}.shape[{i}]")
                if isinstance(s, str)
                else _int(s, f"{path}.shape[{i}]", 1)
            )
        return cls(
            name=_str(d["name"], f"{path}.name"),
            shape=tuple(shape),
            dtype=_str(d["dtype"], f"{path}.dtype", _DTYPES),
            meaning=_str(d["meaning"], f"{path}.meaning"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "meaning": self.meaning,
        }


@dataclass(frozen=True)
class PostprocessSpec:
    """How outputs become probabilities: ``fuse_views`` (``sigmoid(mean over axis 1)`` of a
    ``(B, V, L)`` output), ``sigmoid``, ``softmax`` or ``none``; ``input`` names the output."""

    kind: str
    input: str

    @classmethod
    def from_dict(cls, d: Any, path: str) -> PostprocessSpec:
        d = _mapping(d, path, {"kind", "input"})
        return cls(
            kind=_str(d["kind"], f"{path}.kind", POSTPROCESS_KINDS),
            input=_str(d["input"], f"{path}.input"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "input": self.input}


@dataclass(frozen=True)
class WeightsFileSpec:
    """The network's weights for the torch backend, relative to the manifest's folder."""

    file: str
    format: str
    sha256: str

    @classmethod
    def from_dict(cls, d: Any, path: str) -> WeightsFileSpec:
        d = _mapping(d, path, {"file", "format", "sha256"})
        return cls(
            file=_str(d["file"], f"{path}.file"),
            format=_str(d["format"], f"{path}.format", ("safetensors",)),
            sha256=_sha256(d["sha256"], f"{path}.sha256"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "sha256": self.sha256}


def _sha256(v: Any, path: str) -> str:
    sha = _str(v, path)
    if not _HEX64.match(sha):
        raise _fail(path, "64 lowercase hex digits", sha)
    return sha


@dataclass(frozen=True)
class ModelFileSpec:
    """The model file, relative to the manifest's folder, with its format, opset and sha256,
    and optionally the weights file the torch backend runs."""

    file: str
    format: str
    opset: int
    sha256: str
    weights: WeightsFileSpec | None = None

    @classmethod
    def from_dict(cls, d: Any, path: str) -> ModelFileSpec:
        d = _mapping(d, path, {"file", "format", "opset", "sha256"}, {"weights"})
        weights = d.get("weights")
        return cls(
            file=_str(d["file"], f"{path}.file"),
            format=_str(d["format"], f"{path}.format", ("onnx",)),
            opset=_int(d["opset"], f"{path}.opset", 1),
            sha256=_sha256(d["sha256"], f"{path}.sha256"),
            weights=None
            if weights is None
            else WeightsFileSpec.from_dict(weights, f"{path}.weights"),
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            "file": self.file,
            "format": self.format,
            "opset": self.opset,
            "sha256": self.sha256,
        }
        if self.weights is not None:
            out["weights"] = self.weights.to_dict()
        return out


@dataclass(frozen=True)
class TrainingInfo:
    """What the model was trained on and how well it did."""

    data: str
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    auperf_version: str | None = None

    @classmethod
    def from_dict(cls, d: Any, path: str) -> TrainingInfo:
        d = _mapping(d, path, {"data", "metrics"}, {"config", "auperf_version"})
        metrics = d["metrics"]
        if not isinstance(metrics, dict):
            raise _fail(f"{path}.metrics", "a JSON object", metrics)
        for k, v in metrics.items():
            if not (v is None or isinstance(v, dict)):
                _num(v, f"{path}.metrics.{k}")
        config = d.get("config")
        if config is not None and not isinstance(config, dict):
            raise _fail(f"{path}.config", "a JSON object or null", config)
        version = d.get("auperf_version")
        return cls(
            data=_str(d["data"], f"{path}.data"),
            metrics=_json_value(metrics, f"{path}.metrics"),
            config=None if config is None else _json_value(config, f"{path}.config"),
            auperf_version=None if version is None else _str(version, f"{path}.auperf_version"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data": self.data, "metrics": self.metrics}
        if self.config is not None:
            out["config"] = self.config
        if self.auperf_version is not None:
            out["auperf_version"] = self.auperf_version
        return out


_REQUIRED = {
    "format_version",
    "name",
    "method",
    "task",
    "created",
    "aus",
    "thresholds",
    "input",
    "outputs",
    "postprocess",
    "model",
    "training",
}
_OPTIONAL = {"description", "classes"}


@dataclass(frozen=True)
class Manifest:
    """A validated model manifest (see the module docstring for the JSON format).

    Attributes:
        format_version, name, method, task, created, aus, thresholds, input, outputs,
        postprocess, model, training, description, classes: the fields of the format.
        source: the file it was loaded from (``None`` when built in code).
    """

    name: str
    method: str
    task: str
    created: str
    aus: tuple[AUSpec, ...]
    thresholds: tuple[float, ...]
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    postprocess: PostprocessSpec
    model: ModelFileSpec
    training: TrainingInfo
    description: str = ""
    classes: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION
    source: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Building in code goes through the same checks as loading.
        self.from_dict(self.to_dict())

    # -- convenience -------------------------------------------------------------------------
    @property
    def au_ids(self) -> list[int]:
        """FACS numbers of the AUs, in output order."""
        return [a.id for a in self.aus]

    @property
    def au_names(self) -> list[str]:
        """Names of the AUs, in output order."""
        return [a.name for a in self.aus]

    def output(self, name: str) -> OutputSpec:
        """The output called ``name``."""
        for o in self.outputs:
            if o.name == name:
                return o
        raise ManifestError(
            f"outputs: no output named {name!r}; have {[o.name for o in self.outputs]}"
        )

    def model_path(self, base: str | Path | None = None) -> Path:
        """The model file's path: relative to ``base``, else to the manifest's folder."""
        root = (
            Path(base) if base is not None else (self.source.parent if self.source else Path("."))
        )
        return root / self.model.file

    def verify_model(self, path: str | Path | None = None) -> None:
        """Check the model file's sha256 against ``model.sha256``.

        Raises:
            ManifestError: the file is missing or its hash differs.
        """
        p = Path(path) if path is not None else self.model_path()
        if not p.is_file():
            raise ManifestError(f"model.file: {p} does not exist")
        got = sha256_file(p)
        if got != self.model.sha256:
            raise ManifestError(
                f"model.sha256: {p} hashes to {got}, manifest says {self.model.sha256}"
            )

    # -- (de)serialisation -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Any, source: Path | None = None) -> Manifest:
        """Validate a parsed manifest.

        Raises:
            ManifestVersionError: ``format_version`` newer than :data:`FORMAT_VERSION`.
            ManifestError: any other problem, naming the field.
        """
        if not isinstance(d, dict):
            raise _fail("manifest", "a JSON object", d)
        if "format_version" not in d:
            raise ManifestError("format_version: missing")
        version = _int(d["format_version"], "format_version", 1)
        if version > FORMAT_VERSION:
            raise ManifestVersionError(
                f"format_version: {version} is newer than this auperf reads ({FORMAT_VERSION}); "
                "upgrade auperf"
            )
        _mapping(d, "manifest", _REQUIRED, _OPTIONAL)
        task = _str(d["task"], "task", TASKS)
        created = _str(d["created"], "created")
        try:
            stamp = _dt.datetime.fromisoformat(created)
        except ValueError:
            raise _fail("created", "an ISO 8601 date-time", created) from None
        if stamp.tzinfo is None:
            raise _fail("created", "a date-time with a time zone (e.g. +00:00)", created)
        aus = tuple(AUSpec.from_dict(a, f"aus[{i}]") for i, a in enumerate(_list(d["aus"], "aus")))
        if not aus and task in ("au_occurrence", "au_intensity"):
            raise ManifestError(f"aus: expected at least one AU for task {task!r}")
        seen: set[int] = set()
        for i, a in enumerate(aus):
            if a.id in seen:
                raise ManifestError(f"aus[{i}].id: AU {a.id} appears twice")
            seen.add(a.id)
        th = _list(d["thresholds"], "thresholds", length=len(aus))
        thresholds = tuple(_num(t, f"thresholds[{i}]", 0.0, 1.0) for i, t in enumerate(th))
        classes = tuple(
            _str(c, f"classes[{i}]") for i, c in enumerate(_list(d.get("classes", []), "classes"))
        )
        outputs = tuple(
            OutputSpec.from_dict(o, f"outputs[{i}]")
            for i, o in enumerate(_list(d["outputs"], "outputs", nonempty=True))
        )
        names = [o.name for o in outputs]
        if len(set(names)) != len(names):
            raise ManifestError(f"outputs: names must be unique, got {names}")
        post = PostprocessSpec.from_dict(d["postprocess"], "postprocess")
        if post.kind != "none" and post.input not in names:
            raise ManifestError(
                f"postprocess.input: {post.input!r} is not an output; outputs: {names}"
            )
        if post.kind == "fuse_views":
            shape = outputs[names.index(post.input)].shape
            if len(shape) != 3 or shape[2] != len(aus):
                raise ManifestError(
                    f"postprocess: fuse_views needs output {post.input!r} of shape (batch, views, "
                    f"{len(aus)}), it has {list(shape)}"
                )
        description = _str(d.get("description", ""), "description", nonempty=False)
        obj = object.__new__(cls)
        values = dict(
            format_version=version,
            name=_str(d["name"], "name"),
            method=_str(d["method"], "method"),
            task=task,
            created=created,
            aus=aus,
            thresholds=thresholds,
            input=InputSpec.from_dict(d["input"], "input"),
            outputs=outputs,
            postprocess=post,
            model=ModelFileSpec.from_dict(d["model"], "model"),
            training=TrainingInfo.from_dict(d["training"], "training"),
            description=description,
            classes=classes,
            source=source,
        )
        for k, v in values.items():
            object.__setattr__(obj, k, v)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready dicts and lists."""
        out: dict[str, Any] = {
            "format_version": self.format_version,
            "name": self.name,
            "method": self.method,
            "task": self.task,
            "description": self.description,
            "created": self.created,
            "aus": [a.to_dict() for a in self.aus],
            "thresholds": list(self.thresholds),
            "input": self.input.to_dict(),
            "outputs": [o.to_dict() for o in self.outputs],
            "postprocess": self.postprocess.to_dict(),
            "model": self.model.to_dict(),
            "training": self.training.to_dict(),
        }
        if self.classes:
            out["classes"] = list(self.classes)
        return out

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read and validate a manifest file.

        Raises:
            ManifestVersionError: newer format version.
            ManifestError: missing file, invalid JSON, or an invalid field; the message starts
                with the file name and names the field.
        """
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"{path}: no such manifest file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{path}: not valid JSON: {exc}") from None
        try:
            return cls.from_dict(data, source=path)
        except ManifestError as exc:
            raise type(exc)(f"{path}: {exc}") from None

    def save(self, path: str | Path) -> None:
        """Write the manifest as indented JSON (UTF-8)."""
        Path(path).write_text(
            json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    @staticmethod
    def now() -> str:
        """The current UTC time in the ``created`` format."""
        return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
