"""``lwpose models fetch|list|path|register``: the model store."""
from __future__ import annotations

import argparse

from .. import store


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="install, list and locate models",
                            description=f"Manage the model store in $LWPOSE_HOME/models (now {store.models_dir()}).")
    verbs = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    fetch = verbs.add_parser("fetch", help="install a known model (sha256-verified)")
    fetch.add_argument("name", nargs="?", default=store.DEFAULT_MODEL, choices=sorted(store.KNOWN_MODELS),
                       help=f"model to install (default {store.DEFAULT_MODEL})")
    fetch.add_argument("--mirror", metavar="DIR",
                       help="copy from a local mirror laid out like the official download "
                            "(DIR/NAME/PRECISION/NAME.xml) instead of downloading; default $LWPOSE_MODEL_MIRROR")
    fetch.add_argument("--force", action="store_true", help="reinstall even if the model is present")
    fetch.set_defaults(func=_fetch)

    verbs.add_parser("list", help="list installed and known models").set_defaults(func=_list)

    path = verbs.add_parser("path", help="print the .xml of an installed model")
    path.add_argument("name", help="model name, directory or .xml")
    path.set_defaults(func=lambda args: print(store.resolve(args.name)))

    reg = verbs.add_parser("register", help="add a converted model directory under a name")
    reg.add_argument("name", help="name to use with --model")
    reg.add_argument("model_dir", help="directory written by `lwpose convert`")
    reg.set_defaults(func=lambda args: print(store.register(args.name, args.model_dir)))


def _fetch(args: argparse.Namespace) -> int:
    print(store.fetch(args.name, mirror=args.mirror, force=args.force))
    return 0


def _list(args: argparse.Namespace) -> int:
    installed = store.installed()
    for name in installed:
        print(f"{name}\tinstalled\t{store.models_dir() / name}")
    for name in sorted(set(store.KNOWN_MODELS) - set(installed)):
        print(f"{name}\tavailable\t(lwpose models fetch {name})")
    return 0
