"""The ``auperf`` command line.

Each command lives in its own module of this package (``auperf/cli/<command>.py``) and
defines one click command named ``command``; :data:`COMMANDS` lists them. Modules are
imported when the group is built, and each imports its heavy dependencies inside the command
body so that ``auperf --help`` stays fast.

Exit codes: 0 success, 1 a typed auperf error (message on stderr), 2 bad usage.
"""

from __future__ import annotations

import importlib
import sys

import click

import auperf

#: (command name, module under auperf.cli). Add a line here to add a command.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("info", "info"),
    ("build", "build"),
    ("demo", "demo"),
    ("detect", "detect"),
    ("plot", "plot"),
    ("export-triton", "export_triton"),
    ("serve", "serve"),
    ("estimate", "estimate"),
    ("label", "label"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(auperf.__version__, prog_name="auperf")
def main() -> None:
    """auperf: facial action unit inference."""


for _name, _module in COMMANDS:
    _cmd = importlib.import_module(f"{__name__}.{_module}").command
    main.add_command(_cmd, name=_name)

if __name__ == "__main__":
    sys.exit(main())
