"""The `medtl` command line. Each subcommand lives in its own module in this package.

A subcommand module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``, and may
define ``FLAGS``: the option that sets each request field, put in front of an
:class:`~medtl.errors.InvalidRequest` about that field (``--time-limit: the time limit must be …``).
When the command line names a subcommand, only that subcommand's module is imported (some import
numpy or more at module level); ``medtl --help`` and mistyped commands import them all to list them.
torch, MONAI and Qt are imported inside ``run`` by the commands that need them.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from medtl import __version__
from medtl.errors import InvalidRequest, MedtlError

SUBCOMMANDS = (
    "scan", "convert", "catalog", "sample", "models", "train", "pretrain", "predict", "prompt", "rank", "export", "project", "labels", "pacs", "app", "demo",
)  # fmt: skip


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or (``only``) one with just that subcommand: the others' modules are not imported."""
    parser = argparse.ArgumentParser(prog="medtl", description="Transfer learning on medical images.")
    parser.add_argument("--version", action="version", version=f"medtl {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("--self-test", action="store_true", help="check this installation (decoders, weights, training, prediction, app) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS if only is None else (only,):
        module = importlib.import_module(f"medtl.cli.{name}_command")
        sub_parser = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(handler=module.run, flags=getattr(module, "FLAGS", {}))
    return parser


def named_subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names (its first word that is not an option), if it is one of ``SUBCOMMANDS``."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in SUBCOMMANDS else None


THREAD_WAITING = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Set (unless the user set them) before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On 2 CPU
cores shared with other work (the app's own GUI and worker threads included), spinning threads took the demo's
training steps from 0.35-0.4 s to 0.6-0.8 s and a whole-volume prediction from 0.6 s to 1-25 s."""


def main(argv: Sequence[str] | None = None, *, ends_process: bool = False) -> int:
    """Run the command ``argv`` names; its exit status. ``ends_process``: nothing runs in this process after it (a command
    may then leave out what only later work would use, as `medtl convert` does)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    for name, value in THREAD_WAITING.items():
        os.environ.setdefault(name, value)
    if "--self-test" in argv and named_subcommand(argv) is None:
        from medtl.selftest import run_self_test

        return run_self_test()
    parser = build_parser(only=named_subcommand(argv))
    args = parser.parse_args(argv)
    args.ends_process = ends_process
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except InvalidRequest as error:
        print(f"medtl {args.command}: error: {error.for_cli(args.flags)}", file=sys.stderr)
        return 2
    except MedtlError as error:
        print(f"medtl {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medtl {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # disk full, permission denied, ... : name the file, no traceback
        where = f" {error.filename}" if error.filename else ""
        print(f"medtl {args.command}: error:{where}: {error.strerror or error}", file=sys.stderr)
        return 2


def program() -> int:
    """The `medtl` program (console script, ``python -m medtl``, the frozen build): :func:`main`, then ready to exit.

    What is still alive when a command returns is freed by the interpreter's exit anyway; frozen, it is not walked again
    by the cyclic garbage collector's passes at exit (one over every object numpy and pydicom made: 30-40 ms of
    `medtl convert`'s 0.3 s on a small series). Not in :func:`main`, which tests call in-process.
    """
    code = main(ends_process=True)
    gc.freeze()
    return code
