"""The auperf command line."""

from __future__ import annotations

import json

from click.testing import CliRunner

import auperf
from auperf.cli import main


def test_info_json_matches_build_info():
    res = CliRunner().invoke(main, ["info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["version"] == auperf.__version__
    assert data["cuda_device_count"] == auperf.build_info()["cuda_device_count"]


def test_info_table_and_version():
    res = CliRunner().invoke(main, ["info"])
    assert res.exit_code == 0 and "cuda_compiled" in res.output
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and auperf.__version__ in res.output


def test_unknown_command_fails_with_usage():
    res = CliRunner().invoke(main, ["frobnicate"])
    assert res.exit_code == 2 and "No such command" in res.output
