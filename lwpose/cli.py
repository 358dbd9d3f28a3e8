"""The ``lwpose`` command: one entry point, verbs as subcommands.

Each verb lives in ``lwpose/commands/<verb>.py`` and exposes ``register(subparsers)``; heavy
imports (OpenVINO, torch, pycocotools) happen inside the handlers, so ``lwpose --help`` is fast.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from . import __version__
from .errors import LwposeError
from .fsutil import Terminated

#: Command modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("infer", "run", "bench", "serve", "models", "convert", "eval", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwpose",
        description="Real-time multi-person pose estimation on the CPU (Lightweight OpenPose family, OpenVINO).",
    )
    parser.add_argument("--version", action="version", version=f"lwpose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"lwpose.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LwposeError as exc:
        print(f"lwpose {args.command}: error: {_worded(exc, args)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"lwpose {args.command}: interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    except BrokenPipeError:  # the reader of stdout went away (`lwpose ... --json - | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush fails silently too
        return 128 + signal.SIGPIPE


def _worded(exc: LwposeError, args: argparse.Namespace) -> str:
    """The error message, its leading library parameter reworded as the verb's flag when it has one."""
    if exc.param and hasattr(args, exc.param):
        return exc.worded(f"--{exc.param.replace('_', '-')}")
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
