"""Run configuration: YAML loading, strict keys and types, round trip."""

from __future__ import annotations

import pytest

from training.common.config import (
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from training.m0.config import M0Config


def test_load_nested_yaml(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text(
        "backbone: smallnet\n"
        "au_ids: [1, 2]\n"
        "au_names: [inner brow raiser, outer brow raiser]\n"
        "lambda_mv: 0.5\n"
        "train:\n  epochs: 3\n  lr: 1.0e-3\n  lr_schedule: cosine\n"
    )
    cfg = load_config(p, M0Config)
    assert cfg.backbone == "smallnet" and cfg.num_aus == 2 and cfg.lambda_mv == 0.5
    assert cfg.train.epochs == 3 and cfg.train.lr == 1e-3 and cfg.train.lr_schedule == "cosine"
    assert cfg.train.batch_size == TrainConfig().batch_size


@pytest.mark.parametrize(
    "text, match",
    [
        ("backbon: resnet34\n", r"backbon: unknown key"),
        ("train:\n  lr_schedul: cosine\n", r"train\.lr_schedul: unknown key"),
        ("train:\n  epochs: ten\n", r"train\.epochs: expected an integer"),
        ("train:\n  amp: 1\n", r"train\.amp: expected true or false"),
        ("train:\n  lr: -1.0\n", r"train\.lr: expected > 0"),
        ("au_ids: [1, x]\n", r"au_ids\[1\]: expected an integer"),
        ("au_ids: [1, 2]\n", r"au_names: expected 2 names"),
        ("train: 5\n", r"train: expected a mapping"),
        ("backbone: vgg16\n", r"backbone: expected one of"),
    ],
)
def test_errors_name_the_key_and_file(tmp_path, text, match):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(p, M0Config)
    assert "bad.yaml" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml", M0Config)
    p = tmp_path / "broken.yaml"
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(p, M0Config)


def test_round_trip(tmp_path):
    cfg = config_from_dict(
        M0Config, {"backbone": "resnet18", "train": {"seed": 7}, "data": {"k": 1}}
    )
    save_config(cfg, tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml", M0Config)
    assert back == cfg
    assert config_to_dict(back)["train"]["seed"] == 7


def test_int_accepted_for_float():
    assert config_from_dict(TrainConfig, {"lr": 1}).lr == 1.0
