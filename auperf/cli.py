"""The ``auperf`` command line.

``auperf info`` reports what the compiled core was built with and what this machine offers.
The detection, build, estimation and demo commands arrive with the runtime and front end.
"""

from __future__ import annotations

import json
import sys

import click

import auperf


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(auperf.__version__, prog_name="auperf")
def main() -> None:
    """auperf: facial action unit inference."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def info(as_json: bool) -> None:
    """Build information: version, compiler, CUDA, devices, CPU threads."""
    data = auperf.build_info()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        click.echo(f"{key:<{width}}  {'-' if value is None else value}")


if __name__ == "__main__":
    sys.exit(main())
