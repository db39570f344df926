"""The public names of the training foundation, the networks and the manifest stay importable."""

from __future__ import annotations

import importlib
import inspect

import pytest

MODULES = [
    "auperf.manifest",
    "auperf.nets.backbones",
    "auperf.nets.m0",
    "training.common",
    "training.common.checkpoint",
    "training.common.config",
    "training.common.loop",
    "training.common.metrics",
    "training.common.seed",
    "training.m0",
    "training.m0.config",
    "training.m0.export",
    "training.m0.losses",
    "training.m0.method",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    mod = importlib.import_module(name)
    assert mod.__all__, name
    for attr in mod.__all__:
        assert hasattr(mod, attr), f"{name}.{attr}"


def test_method_interface():
    from training.common.loop import Method

    for hook in (
        "training_step",
        "validation_step",
        "validation_epoch_end",
        "configure_optimizer",
        "on_epoch_start",
        "state_tensors",
        "state_json",
        "load_state",
    ):
        assert callable(getattr(Method, hook)), hook
    assert list(inspect.signature(Method.training_step).parameters) == ["self", "batch", "ctx"]


def test_error_classes_are_auperf_errors():
    from auperf.errors import AuperfError
    from auperf.manifest import ManifestError, ManifestVersionError
    from training.common.checkpoint import CheckpointError
    from training.common.config import ConfigError
    from training.m0.export import ExportError

    for cls in (ManifestError, ManifestVersionError, CheckpointError, ConfigError):
        assert issubclass(cls, AuperfError) and issubclass(cls, ValueError)
    assert issubclass(ExportError, AuperfError) and issubclass(ExportError, RuntimeError)
