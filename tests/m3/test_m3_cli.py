"""``auperf estimate`` on rendered faces: CSV rows with estimates and truth; typed errors exit 1."""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner

from auperf.cli import main


def test_estimate_rendered_writes_csv():
    res = CliRunner().invoke(main, ["estimate", "--rendered", "2", "--iterations", "3"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(rows) == 2
    assert rows[0]["ok"] == "1" and int(rows[0]["iterations"]) <= 3
    for key in ("yaw", "pitch", "roll", "AU12", "true_AU12", "true_yaw"):
        float(rows[1][key])


def test_estimate_bad_value_exits_1():
    res = CliRunner().invoke(main, ["estimate", "--rendered", "1", "--iterations", "-1"])
    assert res.exit_code == 1
    assert "ValueRangeError: iterations" in res.output


def test_estimate_needs_input():
    res = CliRunner().invoke(main, ["estimate"])
    assert res.exit_code == 2
