"""Command-line options shared by several verbs, declared once with one default each."""
from __future__ import annotations

import argparse
from ..store import DEFAULT_MODEL

#: Default network input height of the video verbs (run, bench); still images (infer, eval)
#: default to the accuracy height 368 (docs/accuracy.md).
DEFAULT_HEIGHT = 256
EVAL_HEIGHT = 368


def add_model(parser: argparse.ArgumentParser, *, checkpoints: bool = False) -> None:
    what = "model store name, model directory, IR .xml" + (" or .pth checkpoint (torch)" if checkpoints else "")
    parser.add_argument("--model", default=DEFAULT_MODEL, metavar="NAME|PATH", help=f"{what} (default %(default)s)")


def add_height(parser: argparse.ArgumentParser, default: int = DEFAULT_HEIGHT) -> None:
    parser.add_argument("--height", type=int, default=default,
                        help="network input height in pixels, a multiple of 8; the width follows each frame's "
                             "aspect ratio (default %(default)s)")


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="CPU", help="OpenVINO device (default %(default)s)")


def add_execution(parser: argparse.ArgumentParser, mode: str = "throughput") -> None:
    """``--mode``, ``--nireq`` and ``--threads``: how the OpenVINO backend runs."""
    parser.add_argument("--mode", choices=("throughput", "latency"), default=mode,
                        help="OpenVINO performance hint: throughput (several requests in parallel, best for "
                             "many frames) or latency (one request on all cores) (default %(default)s)")
    parser.add_argument("--nireq", type=int, default=0,
                        help="infer requests in flight (default 0: one more than OpenVINO's optimal number)")
    parser.add_argument("--threads", type=int, default=0, help="OpenVINO inference threads (default 0: all cores)")


def add_server(parser: argparse.ArgumentParser) -> None:
    """``--server URL [URL ...]``: infer on KServe v2 servers instead of locally."""
    parser.add_argument("--server", nargs="+", metavar="URL",
                        help="infer on these KServe v2 servers (lwpose serve, OpenVINO Model Server, Triton) "
                             "instead of locally, spreading the requests over them: grpc://HOST:PORT/MODEL or "
                             "http://HOST:PORT/v2/models/MODEL; --mode and --threads then do not apply and "
                             "--nireq bounds the requests in flight (default: 4 per server)")
