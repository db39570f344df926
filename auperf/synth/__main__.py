"""Command line: ``python -m auperf.synth --sheet out.png`` writes a labelled contact sheet."""

from __future__ import annotations

import argparse
import logging
import sys

import cv2

from .sheet import contact_sheet

log = logging.getLogger("auperf")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and write the contact sheet. Returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m auperf.synth",
        description="Procedural face renderer: write a contact sheet of rendered faces.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sheet", required=True, help="output PNG path")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--tile", type=int, default=128, help="tile size in pixels (>= 32)")
    parser.add_argument("--columns", type=int, default=8, help="tiles per row")
    args = parser.parse_args(argv)
    if args.tile < 32 or args.columns < 1:
        parser.error("--tile must be >= 32 and --columns >= 1")
    sheet = contact_sheet(seed=args.seed, tile=args.tile, columns=args.columns)
    if not cv2.imwrite(args.sheet, sheet[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        parser.error(f"could not write {args.sheet!r}")
    log.info("wrote %s (%dx%d)", args.sheet, sheet.shape[1], sheet.shape[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
