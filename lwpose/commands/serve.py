"""``lwpose serve``: serve a pose model over the KServe v2 protocol (gRPC and REST)."""
from __future__ import annotations

import argparse

from ..errors import LwposeError
from ..preprocess import check_height
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve", help="serve a model over KServe v2 (gRPC and REST) for remote inference",
        description="Serve a model to `KServeBackend` clients (and any KServe v2 client) with KServe's model "
                    "server: input 'image' UINT8 [1, HEIGHT, W, 3] BGR with W any multiple of 8, outputs "
                    "'heatmaps' and 'pafs'. Health: GET /v2/health/live, /v2/health/ready, /v2/models/NAME/ready; "
                    "metadata: GET /v2/models/NAME. Stops on SIGINT/SIGTERM after the requests in flight.")
    options.add_model(parser)
    parser.add_argument("--served-name", metavar="NAME",
                        help="model name clients use in their URL (default: the store name, or the model "
                             "directory's or .xml's name)")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                        help="address both servers listen on (default %(default)s: this host only; "
                             "0.0.0.0 for every interface)")
    parser.add_argument("--grpc-port", type=int, required=True, metavar="N", help="gRPC port")
    parser.add_argument("--http-port", type=int, required=True, metavar="N", help="REST port")
    options.add_height(parser)
    options.add_device(parser)
    parser.add_argument("--nireq", type=int, default=0,
                        help="infer requests (default 0: OpenVINO's optimal number in throughput mode)")
    parser.add_argument("--native-input", action="store_true",
                        help="serve the IR's own input and outputs as OpenVINO Model Server does (FP32 "
                             "[1, 3, 256, 456] NCHW for the Open Model Zoo IR) instead of u8 frames of any width")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for flag in ("grpc_port", "http_port"):
        if not 0 < getattr(args, flag) < 65536:
            raise LwposeError(f"--{flag.replace('_', '-')} must be a port number, not {getattr(args, flag)}")
    if args.grpc_port == args.http_port:
        raise LwposeError("--grpc-port and --http-port must differ")
    if args.nireq < 0:
        raise LwposeError(f"--nireq must be 0 or more, not {args.nireq}")
    check_height(args.height)
    from ..serve import serve

    serve(args.model, name=args.served_name, height=args.height, host=args.host, grpc_port=args.grpc_port,
          http_port=args.http_port, device=args.device, nireq=args.nireq, native=args.native_input)
    return 0
