"""``auperf info``: build information, devices and backends."""

from __future__ import annotations

import json

import click

import auperf


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def command(as_json: bool) -> None:
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
