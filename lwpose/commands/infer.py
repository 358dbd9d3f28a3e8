"""``lwpose infer IMAGE...``: poses in still images, as annotated copies and JSON."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import LwposeError
from ..fsutil import atomic_write
from ..media import IMAGE_SUFFIXES, image_files
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "infer", help="estimate poses in images",
        description="Estimate the poses in still images: write an annotated copy of each image and, "
                    "with --json, the people found. An image that cannot be read or inferred (sides under 8 "
                    "pixels, an aspect ratio over 8) is reported on stderr, the others are processed, and the "
                    "exit status is 2.")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files, or directories (every image in them, sorted by name)")
    options.add_model(parser)
    options.add_height(parser, options.EVAL_HEIGHT)
    parser.add_argument("--json", metavar="FILE|-",
                        help="write the results as a JSON list to FILE, or as JSON lines to stdout with '-' "
                             "(messages then go to stderr); one object an image: image, width, height, "
                             "people (default: no JSON)")
    parser.add_argument("--out", default="runs/infer", metavar="DIR",
                        help="directory for the annotated copies DIR/<stem>.jpg (default %(default)s)")
    parser.add_argument("--min-score", type=float, default=0.0,
                        help="leave out people whose score (mean keypoint score, about 0-1) is below this "
                             "(default %(default)s: keep all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import cv2

    from ..draw import draw_people
    from ..media import read_image
    from ..runtime import PoseModel

    to_stdout = args.json == "-"
    say = sys.stderr if to_stdout else sys.stdout
    json_file = None if args.json in (None, "-") else Path(args.json)
    if json_file and not json_file.parent.is_dir():
        raise LwposeError(f"--json {json_file}: directory {json_file.parent} does not exist")
    images, failures = expand(args.images)
    for message in failures:
        _report(message)
    if not images:
        raise LwposeError("no image to process")
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LwposeError(f"--out {out_dir}: cannot create it ({exc.strerror})") from None
    model = PoseModel(args.model, height=args.height)

    results, names = [], set()
    try:
        for path in images:
            try:
                image = read_image(path)
                people = [p for p in model(image) if p.score >= args.min_score]  # size checked in prepare
            except LwposeError as exc:
                failures.append(str(exc) if str(path) in str(exc) else f"{path}: {exc}")
                _report(failures[-1])
                continue
            out_file = out_dir / f"{_unique(path.stem, names)}.jpg"
            if not cv2.imwrite(str(out_file), draw_people(image.copy(), people)):
                raise LwposeError(f"cannot write {out_file}")
            result = {"image": str(path), "width": image.shape[1], "height": image.shape[0],
                      "people": [p.to_dict() for p in people]}
            if to_stdout:
                print(json.dumps(result), flush=True)
            results.append(result)
            print(f"{path}: {len(people)} {'person' if len(people) == 1 else 'people'} "
                  f"({image.shape[1]}x{image.shape[0]}) -> {out_file}", file=say, flush=True)
    finally:  # also on Ctrl-C or an error: the JSON of the images done so far
        if json_file:
            atomic_write(json_file, "[\n" + ",\n".join(json.dumps(r) for r in results) + "\n]\n",  # an image a line
                         flag="--json")
            print(f"wrote {json_file} ({len(results)} images)", file=say)
    if failures:
        _report(f"{len(failures)} of {len(failures) + len(results)} inputs failed")
        return 2
    return 0


def expand(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image paths from file and directory arguments, and a message for each bad argument."""
    images, failures = [], []
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            found = image_files(path)
            images.extend(found)
            if not found:
                failures.append(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this directory")
        elif path.is_file():
            images.append(path)
        else:
            failures.append(f"{path}: no such file or directory")
    return images, failures


def _unique(stem: str, used: set[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``... if an earlier image of this run took it."""
    name, n = stem, 1
    while name in used:
        n += 1
        name = f"{stem}-{n}"
    used.add(name)
    return name


def _report(message: str) -> None:
    print(f"lwpose infer: error: {message}", file=sys.stderr, flush=True)
