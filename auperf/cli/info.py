"""``auperf info``: build information, devices, backends, front ends and installed models."""

from __future__ import annotations

import json
from typing import Any

import click

import auperf


def installed_models() -> list[dict[str, Any]]:
    """Every model folder shipped under ``auperf/models`` (one manifest each): its path
    relative to that folder, name, method, task and the size of its files in bytes. A folder
    whose manifest cannot be read is listed with ``error``."""
    from ..manifest import Manifest
    from ..models import DEMO_DIR

    root = DEMO_DIR.parent
    out: list[dict[str, Any]] = []
    for manifest in sorted(root.rglob("*.json")):
        folder = manifest.parent
        if folder == root or len(list(folder.glob("*.json"))) != 1:
            continue  # data files beside the model folders (e.g. teacher thresholds)
        entry: dict[str, Any] = {"path": str(folder.relative_to(root))}
        try:
            m = Manifest.load(manifest)
            entry.update(name=m.name, method=m.method, task=m.task)
        except auperf.errors.AuperfError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["bytes"] = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        out.append(entry)
    return out


def _frontends() -> dict[str, str | None]:
    from .. import frontend

    out: dict[str, str | None] = {}
    for name in frontend.names():
        if name == "given":
            out[name] = None
            continue
        try:
            frontend.create(name).close()
            out[name] = None
        except (auperf.errors.AuperfError, ImportError, OSError) as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def command(as_json: bool) -> None:
    """Build information (version, compiler, CUDA, devices, CPU threads), the inference
    backends and face front ends that load here (or why not), and the installed models."""
    from .. import backends

    data: dict[str, Any] = dict(auperf.build_info())
    data["backends"] = backends.unavailable_reasons()
    data["frontends"] = _frontends()
    data["models"] = installed_models()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    plain = {k: v for k, v in data.items() if k not in ("backends", "frontends", "models")}
    width = max(len(k) for k in plain)
    for key, value in plain.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        click.echo(f"{key:<{width}}  {'-' if value is None else value}")
    for title, table in (("backends", data["backends"]), ("front ends", data["frontends"])):
        click.echo(f"\n{title}:")
        for name, why in table.items():
            click.echo(f"  {name:22s} {'available' if why is None else 'unavailable: ' + why}")
    click.echo("\nmodels (auperf/models):")
    for m in data["models"]:
        what = m.get("error") or f"{m['name']} ({m['method']}, {m['task']})"
        click.echo(f"  {m['path']:22s} {what}, {m['bytes'] / 1e6:.1f} MB")
