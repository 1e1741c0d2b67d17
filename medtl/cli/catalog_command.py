"""`medtl catalog forget PATH`: the scan catalog forgets the files under a folder (it holds patients' names and IDs)."""

from __future__ import annotations

import argparse
from pathlib import Path

FLAGS = {"catalog": "--catalog"}
"""The flag that sets each setting, named in front of its errors."""
HELP = "manage the scan catalog: `forget PATH` removes what it remembers of the files under PATH"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    forget = actions.add_parser("forget", help="forget the files at or under PATH (moved, deleted or not to be remembered)")
    forget.add_argument("path", type=Path, metavar="PATH", help="a folder or file scanned before (it need not exist any more)")
    forget.add_argument("--catalog", type=Path, metavar="DB", help="catalog file (default: $MEDTL_CATALOG or the user cache)")


def run(args: argparse.Namespace) -> int:
    from medtl.dicom.catalog import Catalog, default_catalog_path

    path = args.path.expanduser().resolve()
    location = args.catalog or default_catalog_path()
    if not location.exists():
        print(f"{location}: no scan catalog; nothing to forget")
        return 0
    forgotten = Catalog(location).forget(path)
    print(f"{location}: forgot {forgotten} file(s) at or under {path}")
    return 0
