"""M3: AU parameter estimation with the generator in the loop (:class:`Estimator`).

For each face the estimator finds the renderer parameters ``x`` (``auperf.synth`` layout: pose 3 |
expression 23 | identity 51, every dim in ``[0, 1]``) whose imitated face ``G(x)`` looks like the
aligned input ``y`` to the face parser, by projected Adam on

    L_E(x, y) = sum_{l=1..3} mean | W(G(x)) F_l(G(x)) - W(y) F_l(y) |

(``auperf.nets.m3.fit_loss``; the target side ``W(y) F_l(y)`` is computed once per face). All
faces of a batch advance together; each stops on its own (relative loss change <= ``tolerance``
or the iteration cap), and stopped faces drop out of the batch, so they cost nothing further.
The step itself is the compiled kernel :func:`auperf.ops.adam_step`.

Backends (same loop, same kernel):
    - ``"torch"``: the networks in torch; ``dL_E/dx`` by autograd (the reference; CPU or CUDA).
    - ``"onnxruntime"``: exported graphs only: the predictor, the parser's target graph and the
      loss-and-gradient graph (the backward pass exported as ONNX, weights frozen).

Conventions:
    - ``frames``: ``(N, H, W, 3)`` uint8 RGB, one face per frame.
    - ``landmarks``: ``(N, 5, 2)`` (``auperf.align`` point order) or ``(N, 68, 2)`` (iBUG) in frame
      pixels, origin at the centre of the top-left pixel, x right, y down. The face is aligned to
      ``auperf.align.template(S)`` by a similarity (``estimate_similarity`` + ``warp_faces``).
      Without landmarks the frames must already be aligned square crops in the renderer's framing
      (any side; they are resized to ``S``).
    - The alignment removes in-plane rotation, so roll is measured from the alignment matrix
      (``-atan2(M[1, 0], M[0, 0])`` in degrees, positive = clockwise on screen, the renderer's
      convention); the fit leaves the roll dim at 0.5. Without landmarks roll is reported as 0.
    - Pose in degrees: yaw, pitch, roll (``auperf.synth.pose_to_degrees``). AU intensities in
      ``[0, 5]`` for ``auperf.synth.AU_IDS`` (``au_from_expression``: 5 x the AU's dim).

Example::

    est = auperf.Estimator()                       # the shipped demo models, torch backend
    fit = est.fit(frames, landmarks=lm5, iterations=400, init="predictor")
    fit.expression, fit.pose, fit.au_intensity, fit.loss, fit.iterations
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    BackendError,
    BackendUnavailableError,
    DTypeError,
    ModelNotFoundError,
    NonFiniteError,
    ParameterError,
    ShapeError,
    ValueRangeError,
)

__all__ = [
    "Estimator",
    "FitResult",
    "M3_DIR",
    "ROLL_INDEX",
    "ALIGN_FAILED",
    "MASK_TO_PARSE",
    "parse_labels_from_mask",
    "roll_from_matrices",
]

log = logging.getLogger("auperf")

#: Folder of the shipped demo M3 models (one sub-folder, one manifest, per network).
M3_DIR = Path(__file__).resolve().parent / "models" / "m3"
#: Index of the roll dim in the parameter vector.
ROLL_INDEX = 2
#: ``FitResult.status`` of a face that could not be aligned (NaN, Inf or coincident landmarks).
ALIGN_FAILED = -1
_PARAM_DIM = 77
_EXPR = slice(3, 26)
_IDENT = slice(26, 77)
_NETS = ("imitator", "parser", "predictor", "fit")

#: Renderer mask class (``auperf.synth.MASK_CLASSES``) -> M3 parsing class
#: (``auperf.nets.m3.PARSE_CLASSES``); brows and eyes are split left/right afterwards by the
#: crop's vertical midline. Neck, clothes and occluders count as background (not face).
MASK_TO_PARSE = {
    0: 0,  # background
    1: 1,  # skin
    2: 2,  # brows -> brow_left / brow_right
    3: 4,  # eyes -> eye_left / eye_right
    4: 6,  # nose
    5: 7,  # upper_lip
    6: 8,  # mouth (inside and teeth)
    7: 9,  # lower_lip
    8: 10,  # hair
    9: 0,  # neck
    10: 0,  # clothes
    11: 0,  # occluder
}


def parse_labels_from_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Map an aligned renderer mask ``(S, S)`` (or ``(N, S, S)``) to M3 classes, uint8.

    Brow and eye pixels left of the template's midline (the mean x of its two eye points) become
    ``brow_left`` / ``eye_left``, the others ``*_right`` (left/right as seen in the image).
    """
    from .align import template

    mask = np.asarray(mask)
    lut = np.zeros(256, np.uint8)
    for k, v in MASK_TO_PARSE.items():
        lut[k] = v
    out = lut[mask]
    mid = float(template(size)[:2, 0].mean())
    right = np.arange(mask.shape[-1]) > mid
    for left_id in (2, 4):
        sel = (out == left_id) & right
        out[sel] = left_id + 1
    return out


def roll_from_matrices(matrices: np.ndarray) -> np.ndarray:
    """Roll in degrees (positive = clockwise on screen) from ``(N, 2, 3)`` src_to_dst similarity
    matrices: the alignment rotates the face back by the roll, so ``roll = -atan2(M10, M00)``."""
    m = np.asarray(matrices, dtype=np.float64)
    return -np.degrees(np.arctan2(m[:, 1, 0], m[:, 0, 0]))


@dataclass
class FitResult:
    """Per-face output of :meth:`Estimator.fit`.

    Attributes:
        params: ``(N, 77)`` float32 fitted parameters in ``[0, 1]`` (roll dim from the alignment);
            NaN rows for faces that could not be aligned.
        pose: ``(N, 3)`` yaw, pitch, roll in degrees.
        expression: ``(N, 23)`` expression dims; ``identity``: ``(N, 51)`` identity dims.
        au_intensity: ``(N, 15)`` in ``[0, 5]`` for ``auperf.synth.AU_IDS``.
        loss: ``(N,)`` L_E at the returned parameters; ``start_loss`` at the starting point.
        iterations: ``(N,)`` Adam steps taken per face.
        status: ``(N,)`` int8: ``auperf.ops.FitStatus`` codes (1 parameter change, 2 loss change,
            3 iteration cap, 4 non-finite gradient, 0 no step taken) or :data:`ALIGN_FAILED`.
        ok: ``(N,)`` bool, the face was aligned and its parameters are finite.
        start_params: ``(N, 77)`` the starting point (predictor output or 0.5).
        aligned: ``(N, S, S, 3)`` uint8 aligned crops when ``return_images`` was set, else None.
    """

    params: np.ndarray
    pose: np.ndarray
    expression: np.ndarray
    identity: np.ndarray
    au_intensity: np.ndarray
    loss: np.ndarray
    start_loss: np.ndarray
    iterations: np.ndarray
    status: np.ndarray
    ok: np.ndarray
    start_params: np.ndarray
    aligned: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.params)


# -- backends ------------------------------------------------------------------------------------
def _manifest(folder: Path):
    from .models import load_manifest

    if not folder.is_dir():
        raise ModelNotFoundError(f"models: {folder} does not exist (expected M3 network folders)")
    return load_manifest(folder)


def _net_config(man) -> dict[str, Any]:
    cfg = (man.training.config if man.training is not None else None) or {}
    if "net" not in cfg:
        raise ModelNotFoundError(f"{man.source}: training.config.net (network shape) is missing")
    return dict(cfg["net"])


class _TorchFit:
    """Networks in torch; gradients by autograd."""

    name = "torch"

    def __init__(self, root: Path, device: str) -> None:
        import torch
        from safetensors.torch import load_file

        from .models import weights_path
        from .nets import m3

        self.torch = torch
        self.device = torch.device(device)
        nets = {}
        for key, cls in (
            ("imitator", m3.Imitator),
            ("parser", m3.Parser),
            ("predictor", m3.Predictor),
        ):
            man = _manifest(root / key)
            net = cls(**_net_config(man))
            path = weights_path(man)
            if not path.is_file():
                raise ModelNotFoundError(f"{key}: weights file {path} is missing")
            net.load_state_dict(load_file(str(path)), strict=True)
            net.eval().to(self.device)
            for p in net.parameters():
                p.requires_grad_(False)
            nets[key] = net
        self.imitator, self.parser, self.predictor = (
            nets["imitator"],
            nets["parser"],
            nets["predictor"],
        )
        self.size = self.imitator.size
        self._m3 = m3

    def _t(self, a: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def predict(self, images: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.predictor(self._t(images)).cpu().numpy().astype(np.float32)

    def targets(self, images: np.ndarray) -> list:
        with self.torch.no_grad():
            return list(self._m3.weighted_features(self.parser, self._t(images)))

    def take(self, targets: list, idx: np.ndarray) -> list:
        if len(idx) == len(targets[0]):
            return targets
        i = self.torch.from_numpy(idx).to(self.device)
        return [t.index_select(0, i) for t in targets]

    def loss_grad(self, x: np.ndarray, targets: list) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        xt = self._t(x).requires_grad_(True)
        with torch.enable_grad():
            loss = self._m3.fit_loss(self.imitator, self.parser, xt, targets)
            (grad,) = torch.autograd.grad(loss.sum(), xt)
        return loss.detach().cpu().numpy(), grad.cpu().numpy()

    def loss(self, x: np.ndarray, targets: list) -> np.ndarray:
        with self.torch.no_grad():
            return self._m3.fit_loss(self.imitator, self.parser, self._t(x), targets).cpu().numpy()

    def render(self, x: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return self.imitator(self._t(x)).cpu().numpy()


class _OrtFit:
    """Exported graphs in onnxruntime: predictor, parser targets, loss-and-gradient, imitator."""

    name = "onnxruntime"

    def __init__(self, root: Path, providers: list[str] | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - onnxruntime is a core dependency
            raise BackendUnavailableError("backend: onnxruntime is not installed") from e
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        prov = providers or ["CPUExecutionProvider"]
        self.sessions = {}
        self.size = None
        for key in _NETS:
            man = _manifest(root / key)
            man.verify_model()
            self.sessions[key] = ort.InferenceSession(
                str(man.model_path()), sess_options=opts, providers=prov
            )
            if key == "imitator":
                self.size = int(_net_config(man)["size"])

    def predict(self, images: np.ndarray) -> np.ndarray:
        return self.sessions["predictor"].run(["params"], {"image": images})[0]

    def targets(self, images: np.ndarray) -> list:
        return self.sessions["parser"].run(["target1", "target2", "target3"], {"image": images})

    def take(self, targets: list, idx: np.ndarray) -> list:
        if len(idx) == len(targets[0]):
            return targets
        return [np.ascontiguousarray(t[idx]) for t in targets]

    def loss_grad(self, x: np.ndarray, targets: list) -> tuple[np.ndarray, np.ndarray]:
        feed = {"x": np.ascontiguousarray(x, np.float32)}
        feed.update({f"target{i + 1}": t for i, t in enumerate(targets)})
        loss, grad = self.sessions["fit"].run(["loss", "grad"], feed)
        return loss, grad

    def loss(self, x: np.ndarray, targets: list) -> np.ndarray:
        return self.loss_grad(x, targets)[0]

    def render(self, x: np.ndarray) -> np.ndarray:
        return self.sessions["imitator"].run(["image"], {"params": x.astype(np.float32)})[0]


def _adam_step():
    from . import ops

    fn = getattr(ops, "adam_step", None)
    if fn is None:  # the kernel's module before it is re-exported by auperf.ops
        from .ops.fit import adam_step as fn
    return fn


# -- the estimator -------------------------------------------------------------------------------
class Estimator:
    """Batched M3 fitting: aligned faces -> renderer parameters -> pose, expression, AUs.

    Args:
        models: folder holding the ``imitator``, ``parser``, ``predictor`` and ``fit``
            sub-folders (one manifest each), or None for the shipped demo models
            (:data:`M3_DIR`, 64 px).
        backend: ``"torch"`` (autograd, the reference) or ``"onnxruntime"`` (exported graphs).
        device: torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``) for the torch backend.
        providers: onnxruntime execution providers (default CPU).
        lr: Adam learning rate (parameter units per step; 0.001 was chosen on validation faces,
            see docs/m3.md).
    """

    def __init__(
        self,
        models: str | Path | None = None,
        *,
        backend: str = "torch",
        device: str = "cpu",
        providers: list[str] | None = None,
        lr: float = 0.001,
    ) -> None:
        root = Path(models) if models is not None else M3_DIR
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not (lr > 0):
            raise ValueRangeError(f"lr: expected a number > 0, got {lr!r}")
        self.lr = float(lr)
        if backend == "torch":
            try:
                self._b = _TorchFit(root, device)
            except ImportError as e:
                raise BackendUnavailableError("backend: 'torch' needs torch installed") from e
        elif backend == "onnxruntime":
            self._b = _OrtFit(root, providers)
        else:
            raise BackendError(f"backend: expected 'torch' or 'onnxruntime', got {backend!r}")
        self.backend = backend
        self.size = int(self._b.size)
        self.models = root

    # -- input ---------------------------------------------------------------------------------
    def align(
        self, frames: Any, landmarks: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Aligned crops ``(N, S, S, 3)`` uint8, per-face ``ok`` and roll in degrees.

        Raises:
            ShapeError: wrong ranks or sizes, or an empty batch.
            DTypeError: frames not uint8.
        """
        from .align import estimate_similarity, five_points_from_68, template
        from .ops import warp_faces

        fr = np.asarray(frames)
        if fr.ndim != 4 or fr.shape[-1] != 3:
            raise ShapeError(f"frames: expected shape (N, H, W, 3), got {fr.shape}")
        if fr.dtype != np.uint8:
            raise DTypeError(f"frames: expected uint8, got {fr.dtype}")
        n = fr.shape[0]
        if n == 0:
            raise ShapeError("frames: expected at least one face, got an empty batch (0, ...)")
        s = self.size
        if landmarks is None:
            if fr.shape[1] != fr.shape[2]:
                raise ShapeError(
                    f"frames: without landmarks expected square aligned crops, got {fr.shape}"
                )
            k = s / fr.shape[1]
            m = np.array([[k, 0.0, 0.5 * k - 0.5], [0.0, k, 0.5 * k - 0.5]])
            mats = np.broadcast_to(m, (n, 2, 3)).copy()
            ok = np.ones(n, bool)
            roll = np.zeros(n)
        else:
            lm = np.asarray(landmarks, dtype=np.float64)
            if lm.ndim != 3 or lm.shape[0] != n or lm.shape[1] not in (5, 68) or lm.shape[2] != 2:
                raise ShapeError(
                    f"landmarks: expected shape ({n}, 5, 2) or ({n}, 68, 2), got {lm.shape}"
                )
            if lm.shape[1] == 68:
                lm = five_points_from_68(lm)
            mats, ok = estimate_similarity(lm, template(s), return_status=True)
            ok = np.asarray(ok, bool)
            roll = roll_from_matrices(np.where(ok[:, None, None], mats, 0.0))
            mats = np.where(ok[:, None, None], mats, np.array([[1.0, 0, 0], [0, 1.0, 0]]))
        crops = warp_faces(fr, mats, size=s, dtype="uint8", layout="NHWC")
        return crops, ok, np.where(ok, roll, np.nan)

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self,
        frames: Any,
        landmarks: Any = None,
        *,
        iterations: int = 400,
        tolerance: float = 1e-5,
        init: str | np.ndarray = "predictor",
        lr: float | None = None,
        lr_schedule: str = "cosine",
        dims: str | np.ndarray = "all",
        return_images: bool = False,
    ) -> FitResult:
        """Fit every face of the batch at once.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB (see the module's conventions).
            landmarks: ``(N, 5, 2)`` or ``(N, 68, 2)`` in frame pixels, or None for aligned crops.
            iterations: Adam steps at most per face (0: the starting point only).
            tolerance: a face stops when its relative loss change between two steps is
                ``<= tolerance`` (0 disables the rule).
            init: ``"predictor"`` (amortised starting point), ``"mid"`` (every dim 0.5, the
                source's x0) or an ``(N, 77)`` array in ``[0, 1]``.
            lr: Adam learning rate for this call (default: the estimator's).
            lr_schedule: ``"cosine"``: step ``k`` (0-based) uses
                ``lr * (0.1 + 0.45 * (1 + cos(pi * k / iterations)))``, from ``lr`` down to
                ``0.1 * lr``; ``"constant"``: ``lr`` throughout.
            dims: which dims the fit moves: ``"all"``, ``"pose_expression"`` (identity stays at
                the starting point) or a boolean ``(77,)`` mask. Roll is never fitted.
            return_images: keep the aligned crops in the result.

        Returns:
            A :class:`FitResult`. Faces that could not be aligned get NaN rows and status
            :data:`ALIGN_FAILED`; the others are fitted.

        Raises:
            ShapeError, DTypeError: bad frames or landmarks (an empty batch included).
            ValueRangeError: iterations < 0, tolerance < 0, lr <= 0, or an unknown init.
            ParameterError, NonFiniteError: an init array of the wrong shape, outside [0, 1] or
                not finite.
        """
        if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)):
            raise ValueRangeError(f"iterations: expected an integer >= 0, got {iterations!r}")
        if iterations < 0:
            raise ValueRangeError(f"iterations: expected an integer >= 0, got {iterations!r}")
        if not isinstance(tolerance, (int, float)) or not (tolerance >= 0) or math.isinf(tolerance):
            raise ValueRangeError(f"tolerance: expected a finite number >= 0, got {tolerance!r}")
        lr = self.lr if lr is None else lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr < math.inf):
            raise ValueRangeError(f"lr: expected a finite number > 0, got {lr!r}")
        if lr_schedule not in ("cosine", "constant"):
            raise ValueRangeError(
                f"lr_schedule: expected 'cosine' or 'constant', got {lr_schedule!r}"
            )
        if isinstance(init, str) and init not in ("predictor", "mid"):
            raise ValueRangeError(f"init: expected 'predictor', 'mid' or an array, got {init!r}")

        free = _dims_mask(dims)
        crops, ok, roll = self.align(frames, landmarks)
        n = len(crops)
        idx_ok = np.flatnonzero(ok)
        images = np.ascontiguousarray(
            crops[idx_ok].transpose(0, 3, 1, 2), dtype=np.float32
        ) / np.float32(255.0)

        if isinstance(init, str):
            if init == "predictor" and len(idx_ok):
                x0 = self._b.predict(images)
            else:
                x0 = np.full((len(idx_ok), _PARAM_DIM), 0.5, np.float32)
        else:
            a = np.asarray(init, dtype=np.float64)
            if a.shape != (n, _PARAM_DIM):
                raise ParameterError(f"init: expected shape ({n}, {_PARAM_DIM}), got {a.shape}")
            if not np.isfinite(a).all():
                raise NonFiniteError("init: holds NaN or infinite values")
            if a.min() < 0 or a.max() > 1:
                raise ParameterError(f"init: values must lie in [0, 1], got [{a.min()}, {a.max()}]")
            x0 = a[idx_ok].astype(np.float32)
        x0 = np.ascontiguousarray(x0, np.float32)
        x0[:, ROLL_INDEX] = 0.5

        x, loss, start_loss, steps, status = self._optimise(
            images, x0, iterations, tolerance, lr, lr_schedule, free
        )

        params = np.full((n, _PARAM_DIM), np.nan, np.float32)
        start = np.full((n, _PARAM_DIM), np.nan, np.float32)
        params[idx_ok] = x
        start[idx_ok] = x0
        from .synth import POSE_RANGE_DEG, au_from_expression

        roll_dim = 0.5 + 0.5 * np.clip(roll / POSE_RANGE_DEG[2], -1, 1)
        params[:, ROLL_INDEX] = np.where(ok, roll_dim, np.nan)
        start[:, ROLL_INDEX] = params[:, ROLL_INDEX]
        pose = (2.0 * params[:, :3].astype(np.float64) - 1.0) * np.asarray(POSE_RANGE_DEG)
        pose[:, 2] = roll
        full = lambda v, fill, dt: _scatter(n, idx_ok, v, fill, dt)  # noqa: E731
        au = np.full((n, 15), np.nan)
        if len(idx_ok):
            au[idx_ok] = au_from_expression(np.clip(x[:, _EXPR], 0, 1))
        st = np.full(n, ALIGN_FAILED, np.int8)
        st[idx_ok] = status
        good = ok.copy()
        good[idx_ok] &= np.isfinite(x).all(1)
        return FitResult(
            params=params,
            pose=pose,
            expression=params[:, _EXPR].copy(),
            identity=params[:, _IDENT].copy(),
            au_intensity=au,
            loss=full(loss, np.nan, np.float32),
            start_loss=full(start_loss, np.nan, np.float32),
            iterations=full(steps, 0, np.int32),
            status=st,
            ok=good,
            start_params=start,
            aligned=crops if return_images else None,
        )

    def _optimise(self, images, x0, iterations, tolerance, lr, lr_schedule, free):
        n = len(x0)
        if n == 0:
            z = np.zeros(0, np.float32)
            return x0, z, z, np.zeros(0, np.int32), np.zeros(0, np.int8)
        adam_step = _adam_step()
        targets = self._b.targets(images)
        x = x0.copy()
        grads = np.zeros_like(x)
        m = np.zeros_like(x)
        v = np.zeros_like(x)
        step = np.zeros(n, np.int32)
        active = np.ones(n, bool)
        loss = np.zeros(n, np.float32)
        prev = np.zeros(n, np.float32)
        status = np.zeros(n, np.int8)
        start_loss = self._b.loss(x, targets).astype(np.float32)
        for k in range(iterations):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            la, ga = self._b.loss_grad(x[idx], self._b.take(targets, idx))
            loss[idx] = la
            grads[idx] = ga * free
            lr_k = lr
            if lr_schedule == "cosine":
                lr_k = lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * k / iterations)))
            adam_step(
                x,
                grads,
                m,
                v,
                step,
                active,
                lr=lr_k,
                loss=loss,
                prev_loss=prev,
                tol_loss=float(tolerance),
                max_iterations=iterations,
                status=status,
            )
        final = self._b.loss(x, targets).astype(np.float32)
        return x, final, start_loss, step, status

    def render(self, params: Any) -> np.ndarray:
        """The imitator's faces for ``(N, 77)`` parameters: ``(N, S, S, 3)`` uint8 RGB."""
        x = np.asarray(params, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != _PARAM_DIM:
            raise ShapeError(f"params: expected shape (N, {_PARAM_DIM}), got {x.shape}")
        if not np.isfinite(x).all():
            raise NonFiniteError("params: holds NaN or infinite values")
        img = self._b.render(np.ascontiguousarray(x))
        return np.clip(np.rint(img.transpose(0, 2, 3, 1) * 255.0), 0, 255).astype(np.uint8)

    def describe(self) -> dict[str, Any]:
        """Backend, crop size and model folder, as a JSON-friendly dict."""
        return {"backend": self.backend, "size": self.size, "models": str(self.models)}

    def __repr__(self) -> str:
        return f"Estimator({json.dumps(self.describe())})"


def _dims_mask(dims: Any) -> np.ndarray:
    """``(77,)`` float32 mask of the dims the fit moves (roll always 0)."""
    if isinstance(dims, str):
        if dims not in ("all", "pose_expression"):
            raise ValueRangeError(
                f"dims: expected 'all', 'pose_expression' or a (77,) bool mask, got {dims!r}"
            )
        free = np.ones(_PARAM_DIM, np.float32)
        if dims == "pose_expression":
            free[_IDENT] = 0.0
    else:
        a = np.asarray(dims)
        if a.shape != (_PARAM_DIM,) or a.dtype != np.bool_:
            raise ValueRangeError(
                f"dims: expected a (77,) bool mask, got shape {a.shape} dtype {a.dtype}"
            )
        free = a.astype(np.float32)
    free[ROLL_INDEX] = 0.0
    return free


def _scatter(n: int, idx: np.ndarray, values: np.ndarray, fill: Any, dtype: Any) -> np.ndarray:
    out = np.full(n, fill, dtype)
    out[idx] = values
    return out
