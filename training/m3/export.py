"""Export of the M3 networks: one folder per network, each with ONNX, safetensors and manifest.

Folders (under ``out``): ``imitator/``, ``parser/``, ``predictor/`` and ``fit/``:

- ``imitator``: ``params`` (batch, 77) -> ``image`` (batch, 3, S, S) in [0, 1];
- ``parser``: ``image`` (batch, 3, S, S) in [0, 1] -> ``logits`` (batch, K, S, S) and
  ``target1..3`` = W(y) F_l(y) (batch, K, C_l, H_l, W_l);
- ``predictor``: ``image`` -> ``params`` (batch, 77);
- ``fit``: ``x`` (batch, 77) and ``target1..3`` -> ``loss`` (batch,) and ``grad`` = dL_E/dx
  (batch, 77).

The first three are exported with ``torch.onnx.export(dynamo=False, opset_version=17)``. The
``fit`` graph holds the loss *and its gradient*: ``torch.func.grad_and_value`` of the summed
loss is traced with ``make_fx`` (symbolic batch) into plain aten ops, where the decomposition
table writes ``convolution_backward``'s input gradient as a convolution (a transposed one for a
convolution, a plain one for a transposed convolution), the weights frozen; that graph is
exported with ``dynamo=True`` at opset 18 (needs ``onnxscript``). Every export is checked with
``onnx.checker`` and run by onnxruntime against torch (autograd for the gradient) on a batch of
another size than the traced one.

The manifest format (version 1) describes an image input; for ``imitator`` and ``fit``, whose
graphs take parameters, ``input`` describes the aligned image domain the model works in and the
description names the real graph inputs. ``training.config.net`` holds the constructor
arguments of the network (read by :class:`auperf.Estimator`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from auperf import __version__ as auperf_version
from auperf.align import template
from auperf.errors import AuperfError
from auperf.manifest import (
    AlignmentSpec,
    InputSpec,
    Manifest,
    ModelFileSpec,
    OutputSpec,
    PostprocessSpec,
    TrainingInfo,
    WeightsFileSpec,
    sha256_file,
)
from auperf.nets.m3 import PARAM_DIM, Imitator, Parser, Predictor, fit_loss, weighted_features

from ..common.checkpoint import save_weights

__all__ = ["ExportError", "export_all", "export_fit_graph", "loss_grad_function"]

log = logging.getLogger("auperf.training.m3")
_aten = torch.ops.aten


class ExportError(AuperfError, RuntimeError):
    """An exported graph failed its check (checker, or onnxruntime disagrees with torch)."""


def _conv_backward(
    grad_out,
    inp,
    weight,
    bias_sizes,
    stride,
    padding,
    dilation,
    transposed,
    output_padding,
    groups,
    output_mask,
):
    """Input gradient of a 2-D (transposed) convolution as a (transposed) convolution."""
    if transposed:
        gi = _aten.convolution.default(
            grad_out, weight, None, stride, padding, dilation, False, [0, 0], groups
        )
    else:
        op = [
            inp.shape[2 + i]
            - (
                (grad_out.shape[2 + i] - 1) * stride[i]
                - 2 * padding[i]
                + dilation[i] * (weight.shape[2 + i] - 1)
                + 1
            )
            for i in range(2)
        ]
        gi = _aten.convolution.default(
            grad_out, weight, None, stride, padding, dilation, True, op, groups
        )
    return gi, None, None


def loss_grad_function(imitator: Imitator, parser: Parser):
    """``f(x, t1, t2, t3) -> (loss (N,), grad (N, 77))`` computed with ``torch.func``."""

    def summed(x, t1, t2, t3):
        loss = fit_loss(imitator, parser, x, [t1, t2, t3])
        return loss.sum(), loss

    def step(x, t1, t2, t3):
        grad, (_, loss) = torch.func.grad_and_value(summed, has_aux=True)(x, t1, t2, t3)
        return loss, grad

    return step


def _frozen(*nets):
    for n in nets:
        n.eval()
        for p in n.parameters():
            p.requires_grad_(False)


def export_fit_graph(imitator: Imitator, parser: Parser, path: Path, atol: float = 1e-5) -> float:
    """Export the loss-and-gradient graph to ``path``; returns the largest |ORT - autograd|."""
    from torch._decomp import core_aten_decompositions
    from torch.export import Dim
    from torch.fx.experimental.proxy_tensor import make_fx

    _frozen(imitator, parser)
    table = dict(core_aten_decompositions())
    table[_aten.convolution_backward.default] = _conv_backward
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, PARAM_DIM, generator=g)
    y = torch.rand(3, 3, imitator.size, imitator.size, generator=g)
    with torch.no_grad():
        ts = weighted_features(parser, y)
    gm = make_fx(
        loss_grad_function(imitator, parser),
        decomposition_table=table,
        tracing_mode="symbolic",
        _allow_non_fake_inputs=True,
    )(x, *ts)
    batch = Dim("batch", min=1, max=1 << 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            gm,
            (x, *ts),
            str(path),
            dynamo=True,
            opset_version=18,
            input_names=["x", "target1", "target2", "target3"],
            output_names=["loss", "grad"],
            dynamic_shapes=({0: batch}, {0: batch}, {0: batch}, {0: batch}),
            external_data=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    return _check_fit_graph(imitator, parser, path, atol)


def _check_fit_graph(imitator, parser, path, atol) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    x = torch.rand(5, PARAM_DIM, generator=g)
    y = torch.rand(5, 3, imitator.size, imitator.size, generator=g)
    with torch.no_grad():
        ts = weighted_features(
            parser, imitator(torch.rand(5, PARAM_DIM, generator=g)) * 0.5 + y * 0.5
        )
    xr = x.clone().requires_grad_(True)
    loss = fit_loss(imitator, parser, xr, ts)
    (grad,) = torch.autograd.grad(loss.sum(), xr)
    feed = {"x": x.numpy()}
    feed.update({f"target{i + 1}": t.numpy() for i, t in enumerate(ts)})
    ol, og = sess.run(["loss", "grad"], feed)
    err = max(
        float(np.abs(og - grad.numpy()).max()), float(np.abs(ol - loss.detach().numpy()).max())
    )
    if not err <= atol:
        raise ExportError(f"{path.name}: onnxruntime differs from autograd by {err:.3g} > {atol}")
    return err


class _ParserTargets(torch.nn.Module):
    def __init__(self, parser: Parser) -> None:
        super().__init__()
        self.parser = parser

    def forward(self, image):
        logits, _ = self.parser.features(image)
        t = weighted_features(self.parser, image)
        return logits, t[0], t[1], t[2]


def _export_plain(module, args, path, inputs, outputs, check_batch, atol) -> float:
    import onnxruntime as ort

    module.eval()
    dyn = {n: {0: "batch"} for n in inputs + outputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dyn,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = module(check_batch)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = sess.run(outputs, {inputs[0]: check_batch.numpy()})
    err = max(float(np.abs(a - b.numpy()).max()) for a, b in zip(got, ref, strict=True))
    if not err <= atol:
        raise ExportError(f"{path.name}: onnxruntime differs from torch by {err:.3g} > {atol}")
    return err


def _manifest(
    name: str,
    task: str,
    size: int,
    description: str,
    outputs: list[OutputSpec],
    onnx_path: Path,
    opset: int,
    weights: Path | None,
    net_cfg: dict,
    data: str,
    metrics: dict,
    config: dict,
) -> Manifest:
    return Manifest(
        name=name,
        method="M3",
        task=task,
        description=description,
        created=Manifest.now(),
        aus=(),
        thresholds=(),
        input=InputSpec(
            name="image",
            size=(size, size),
            channels=3,
            colour_order="RGB",
            mean=(0.0, 0.0, 0.0),
            std=(255.0, 255.0, 255.0),
            layout="NCHW",
            dtype="float32",
            alignment=AlignmentSpec(
                template=f"arcface5_{size}",
                points=tuple((float(a), float(b)) for a, b in template(size)),
            ),
        ),
        outputs=tuple(outputs),
        postprocess=PostprocessSpec(kind="none", input=outputs[0].name),
        model=ModelFileSpec(
            file=onnx_path.name,
            format="onnx",
            opset=opset,
            sha256=sha256_file(onnx_path),
            weights=None
            if weights is None
            else WeightsFileSpec(
                file=weights.name, format="safetensors", sha256=sha256_file(weights)
            ),
        ),
        training=TrainingInfo(
            data=data,
            metrics=metrics,
            config={"net": net_cfg, "run": config},
            auperf_version=auperf_version,
        ),
    )


def export_all(
    imitator: Imitator,
    parser: Parser,
    predictor: Predictor,
    out: str | Path,
    *,
    data: str,
    metrics: dict[str, dict[str, Any]] | None = None,
    config: dict | None = None,
    atol: float = 1e-4,
) -> dict[str, Path]:
    """Export the four folders under ``out``; returns ``{folder: manifest path}``."""
    out = Path(out)
    metrics = metrics or {}
    config = config or {}
    s = imitator.size
    _frozen(imitator, parser, predictor)
    g = torch.Generator().manual_seed(2)
    img = torch.rand(3, 3, s, s, generator=g)
    x = torch.rand(3, PARAM_DIM, generator=g)
    ch = [parser.channels[0], parser.channels[1], parser.channels[2]]
    k = len(__import__("auperf.nets.m3", fromlist=["PARSE_CLASSES"]).PARSE_CLASSES)
    nets = {
        "imitator": (
            imitator,
            {
                "size": s,
                "width": imitator.width,
                "min_width": imitator.min_width,
                "arch": imitator.arch,
            },
        ),
        "parser": (parser, {"size": s, "width": parser.width}),
        "predictor": (predictor, {"size": s, "width": predictor.body[0].out_channels}),
    }
    paths = {}
    for key, (net, net_cfg) in nets.items():
        folder = out / key
        folder.mkdir(parents=True, exist_ok=True)
        name = f"m3-{key}-synth{s}"
        onnx_path = folder / f"{name}.onnx"
        wpath = folder / f"{name}.safetensors"
        save_weights(net, wpath, {"format": "auperf-weights", "net": key})
        if key == "imitator":
            err = _export_plain(net, (x,), onnx_path, ["params"], ["image"], x[:2], atol)
            outputs = [OutputSpec("image", ("batch", 3, s, s), "float32", "G(x): RGB in [0, 1]")]
            task, desc = "features", "M3 imitator G: graph input 'params' (batch, 77) in [0, 1]"
        elif key == "parser":
            names = ["logits", "target1", "target2", "target3"]
            err = _export_plain(
                _ParserTargets(net), (img,), onnx_path, ["image"], names, img[:2], atol
            )
            outputs = [OutputSpec("logits", ("batch", k, s, s), "float32", "M3 parsing logits")]
            for i, c in enumerate(ch):
                r = s >> i
                outputs.append(
                    OutputSpec(
                        f"target{i + 1}",
                        ("batch", k, c, r, r),
                        "float32",
                        f"W(y) F_{i + 1}(y): class probabilities times feature map {i + 1}",
                    )
                )
            task, desc = "features", "M3 face parser; its targets feed the fit graph"
        else:
            err = _export_plain(net, (img,), onnx_path, ["image"], ["params"], img[:2], atol)
            outputs = [OutputSpec("params", ("batch", PARAM_DIM), "float32", "x in [0, 1]")]
            task, desc = "au_parameters", "M3 amortised predictor: aligned face -> x (start point)"
        m = _manifest(
            name,
            task,
            s,
            desc,
            outputs,
            onnx_path,
            17,
            wpath,
            net_cfg,
            data,
            {**metrics.get(key, {}), "onnx_max_abs_err": err},
            config,
        )
        mp = folder / f"{name}.json"
        m.save(mp)
        paths[key] = mp
    folder = out / "fit"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"m3-fit-synth{s}"
    onnx_path = folder / f"{name}.onnx"
    err = export_fit_graph(imitator, parser, onnx_path, atol=atol)
    outputs = [
        OutputSpec("loss", ("batch",), "float32", "L_E(x, y) per face"),
        OutputSpec("grad", ("batch", PARAM_DIM), "float32", "dL_E/dx per face"),
    ]
    desc = (
        "M3 loss and gradient: graph inputs 'x' (batch, 77) and 'target1..3' (the parser "
        "graph's outputs for the target faces); weights of imitator and parser frozen in"
    )
    m = _manifest(
        name,
        "features",
        s,
        desc,
        outputs,
        onnx_path,
        18,
        None,
        {"size": s},
        data,
        {"max_abs_err_vs_autograd": err},
        config,
    )
    mp = folder / f"{name}.json"
    m.save(mp)
    paths["fit"] = mp
    return paths
