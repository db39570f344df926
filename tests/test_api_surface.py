"""The public API surface: what users import must stay importable and keep its names."""

from __future__ import annotations

import inspect

import auperf
import auperf.align
import auperf.errors
import auperf.ops


def test_top_level_names():
    for name in ("__version__", "build_info", "set_num_threads", "get_num_threads", "errors"):
        assert hasattr(auperf, name), name


def test_ops_names_and_keywords():
    assert set(auperf.ops.__all__) >= {"warp_faces", "fuse_views"}
    params = inspect.signature(auperf.ops.warp_faces).parameters
    for kw in (
        "size",
        "mean",
        "std",
        "input_order",
        "output_order",
        "dtype",
        "layout",
        "border_value",
        "out",
    ):
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
    assert list(params)[:3] == ["frames", "matrices", "frame_index"]
    assert list(inspect.signature(auperf.ops.fuse_views).parameters)[:2] == ["logits", "thresholds"]


def test_adam_step_signature():
    assert {"adam_step", "FitStatus"} <= set(auperf.ops.__all__)
    params = inspect.signature(auperf.ops.adam_step).parameters
    assert list(params)[:6] == ["params", "grads", "m", "v", "step", "active"]
    for name in list(params)[:6]:
        assert params[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
    defaults = {
        "loss": None,
        "prev_loss": None,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
        "lower": 0.0,
        "upper": 1.0,
        "tol_param": 0.0,
        "tol_loss": 0.0,
        "max_iterations": None,
        "status": None,
        "stream": None,
    }
    assert params["lr"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["lr"].default is inspect.Parameter.empty
    for kw, default in defaults.items():
        assert params[kw].kind is inspect.Parameter.KEYWORD_ONLY, kw
        assert params[kw].default == default, kw
    codes = {s.name: int(s) for s in auperf.ops.FitStatus}
    assert codes == {
        "RUNNING": 0,
        "CONVERGED_PARAM": 1,
        "CONVERGED_LOSS": 2,
        "MAX_ITERATIONS": 3,
        "NON_FINITE": 4,
    }


def test_align_names():
    for name in ("TEMPLATE_112", "TEMPLATE_224", "TEMPLATE_256", "template", "estimate_similarity"):
        assert hasattr(auperf.align, name), name


def test_error_hierarchy():
    e = auperf.errors
    assert issubclass(e.ShapeError, (e.AuperfError, ValueError))
    assert issubclass(e.DTypeError, TypeError) and issubclass(e.DTypeError, e.AuperfError)
    assert issubclass(e.DeviceError, ValueError)
    assert issubclass(e.CudaError, RuntimeError)
    assert issubclass(e.CudaUnavailableError, RuntimeError)
    for name in e.__all__:
        assert issubclass(getattr(e, name), e.AuperfError)


def test_import_does_not_pull_heavy_frameworks():
    import subprocess
    import sys

    code = (
        "import sys, auperf, auperf.ops, auperf.align; "
        "heavy = [m for m in ('torch', 'cupy', 'tensorrt', 'onnxruntime') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import auperf pulled in {out.stdout.strip()}"


def test_synth_and_datasets_names():
    import auperf.datasets
    import auperf.synth

    for name in (
        "FaceRenderer",
        "RenderResult",
        "sample_params",
        "au_from_expression",
        "expression_from_au",
        "render_sequence",
        "render_multiface",
        "PARAM_DIM",
        "AU_IDS",
        "EXPRESSION_NAMES",
    ):
        assert hasattr(auperf.synth, name), name
    for name in ("open_dataset", "available_layouts", "flip_labels", "weak_model_labels"):
        assert hasattr(auperf.datasets, name), name
    from auperf.labels import EXPRESSIONS

    assert auperf.synth.CATEGORY_NAMES == EXPRESSIONS
