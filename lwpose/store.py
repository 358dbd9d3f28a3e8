"""The model store: named models under ``$LWPOSE_HOME/models/NAME/`` (default ``~/.cache/lwpose``).

A model directory holds ``model.xml``, ``model.bin`` and ``lwpose.json``, the metadata the runtime
reads so it never guesses (input layout and type, whether normalisation is in the graph, output
names, stride). ``fetch`` installs a known model from its official URL or a local mirror and
verifies its sha256; ``register`` adds a converted model under a name.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import LwposeError
from .files import load_file
from .pose import KEYPOINTS_18
from .preprocess import STRIDE

DEFAULT_MODEL = "human-pose-estimation-0001"
METADATA_FILE = "lwpose.json"
#: Model names: letters, digits, ``.``, ``_``, ``+``, ``-``; not starting with a dot; at most 100 characters.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,99}")
LAYOUTS = ("NCHW", "NHWC")
ELEMENT_TYPES = ("u8", "f32")
#: The IR's ``rt_info`` entry holding the same metadata as JSON (written by ``lwpose convert``).
RT_INFO_KEY = "lwpose_metadata"

_OMZ_URL = "https://storage.openvinotoolkit.org/repositories/open_model_zoo/2023.0/models_bin/1"


@dataclass(frozen=True)
class KnownModel:
    """A model ``fetch`` can install: where its files are and their checksums."""

    name: str
    subdir: str  # path below the URL base and below a mirror directory
    files: dict[str, str]  # remote file name -> sha256
    metadata: dict


KNOWN_MODELS: dict[str, KnownModel] = {
    "human-pose-estimation-0001": KnownModel(
        name="human-pose-estimation-0001",
        subdir="human-pose-estimation-0001/FP16-INT8",
        files={
            "human-pose-estimation-0001.xml": "c3a47de94906e6b3256eb16af7274141b2fc9f6c7889a02d96ef430b9bc321d3",
            "human-pose-estimation-0001.bin": "fc7e9dde0f4a34876cfbbd266388a59526a8c8c1bc9394ce4827b7a007d20f82",
        },
        metadata={
            "format": 1,
            "name": "human-pose-estimation-0001",
            "architecture": "human-pose-estimation-0001",
            "num_refinement_stages": 1,
            "keypoints": list(KEYPOINTS_18),
            "stride": 8,
            "input": {"name": "data", "layout": "NCHW", "element_type": "f32", "color": "BGR",
                      "normalisation_in_graph": True, "mean": 128, "scale": 255, "shape": [1, 3, 256, 456]},
            "outputs": {"heatmaps": "Mconv7_stage2_L2", "pafs": "Mconv7_stage2_L1"},
            "precision": "FP16-INT8",
            "source": {"url": f"{_OMZ_URL}/human-pose-estimation-0001/FP16-INT8/", "license": "Apache-2.0"},
        },
    ),
}


def home() -> Path:
    """The lwpose data directory: ``$LWPOSE_HOME`` or ``~/.cache/lwpose``."""
    return Path(os.environ.get("LWPOSE_HOME") or Path.home() / ".cache" / "lwpose")


def models_dir() -> Path:
    return home() / "models"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str = DEFAULT_MODEL, mirror: str | Path | None = None, force: bool = False) -> Path:
    """Install a known model into the store and return its directory.

    Files come from ``mirror`` (or ``$LWPOSE_MODEL_MIRROR``), a directory laid out like the
    official download (``MIRROR/human-pose-estimation-0001/FP16-INT8/*.xml``), else from the
    official URL. Every file's sha256 is checked before the model directory appears.
    """
    if name not in KNOWN_MODELS:
        raise LwposeError(f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)}")
    known = KNOWN_MODELS[name]
    target = models_dir() / name
    if (target / "model.xml").is_file() and not force:
        return target
    mirror = mirror or os.environ.get("LWPOSE_MODEL_MIRROR")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        tmp_dir = Path(tmp)
        for remote, expected in known.files.items():
            local = tmp_dir / ("model" + Path(remote).suffix)
            if mirror:
                src = Path(mirror) / known.subdir / remote
                if not src.is_file():
                    raise LwposeError(f"mirror {mirror}: {src} not found")
                shutil.copyfile(src, local)
            else:
                url = f"{_OMZ_URL}/{known.subdir}/{remote}"
                try:
                    urllib.request.urlretrieve(url, local)
                except OSError as exc:
                    raise LwposeError(f"cannot download {url}: {exc}; use --mirror DIR") from None
            actual = sha256(local)
            if actual != expected:
                raise LwposeError(f"{remote}: sha256 {actual} does not match the expected {expected}")
        (tmp_dir / METADATA_FILE).write_text(json.dumps(known.metadata, indent=2) + "\n")
        _install(tmp_dir, target)
    return target


def _install(tmp_dir: Path, target: Path) -> None:
    """Replace ``target`` by the complete model directory ``tmp_dir`` (a ``TemporaryDirectory``)."""
    tmp_dir.chmod(0o777 & ~_umask())  # TemporaryDirectory makes it private; models are not
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp_dir, target)
    tmp_dir.mkdir()  # TemporaryDirectory cleans up the (now empty) name it created


def register(name: str, model_dir: str | Path) -> Path:
    """Copy a converted model directory (``lwpose convert`` output) into the store as ``name``."""
    model_dir = Path(model_dir)
    for required in ("model.xml", "model.bin", METADATA_FILE):
        if not (model_dir / required).is_file():
            raise LwposeError(f"{model_dir}: {required} is missing; is it `lwpose convert` output?")
    check_name(name)
    target = models_dir() / name
    if target.resolve() == model_dir.resolve():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        shutil.copytree(model_dir, tmp, dirs_exist_ok=True)
        _install(Path(tmp), target)
    return target


def check_name(name: str) -> None:
    """LwposeError unless ``name`` is a valid model name (see :data:`NAME_PATTERN`)."""
    if not NAME_PATTERN.fullmatch(name):
        shown = repr(name) if len(name) <= 40 else f"{name[:40]!r}... ({len(name)} characters)"
        raise LwposeError(f"invalid model name {shown}: use at most 100 letters, digits, '.', '_', '+' or '-', "
                          "not starting with '.'")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def installed() -> list[str]:
    """Names of the models in the store."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model.xml").is_file())


def resolve(model: str | Path) -> Path:
    """The ``.xml`` of a model given as a store name, a model directory or an ``.xml`` path."""
    path = Path(model)
    if path.suffix == ".xml":
        if not path.is_file():
            raise LwposeError(f"model file {path} not found")
        return path
    if path.is_dir():
        xml = path / "model.xml"
        if not xml.is_file():
            raise LwposeError(f"model directory {path} has no model.xml")
        return xml
    xml = models_dir() / str(model) / "model.xml"
    if xml.is_file():
        return xml
    hint = f"run `lwpose models fetch {model}`" if str(model) in KNOWN_MODELS else \
        f"installed: {', '.join(installed()) or 'none'}"
    raise LwposeError(f"model {str(model)!r} is neither a file nor an installed model ({hint})")


def metadata(xml: Path) -> dict:
    """The model's metadata: ``lwpose.json`` beside it, else the IR's ``rt_info`` (``lwpose
    convert`` writes both), else for a bare IR of the known family its known metadata."""
    meta_file = xml.parent / METADATA_FILE
    if meta_file.is_file():
        return _checked(load_file(meta_file, "model", "json"), meta_file)
    embedded = _rt_info(xml)
    if embedded is not None:
        try:
            return _checked(json.loads(embedded), xml)
        except json.JSONDecodeError as exc:
            raise LwposeError(f"{xml}: invalid JSON in rt_info {RT_INFO_KEY} ({exc})") from None
    for known in KNOWN_MODELS.values():
        if xml.name in known.files:
            return known.metadata
    raise LwposeError(f"{xml}: no {METADATA_FILE} beside it; convert the model with `lwpose convert`")


def check_metadata(meta: dict, source: Path | str) -> None:
    """LwposeError naming ``source`` and the field for any metadata field the runtime cannot use."""
    def bad(field: str, rule: str, value: object) -> LwposeError:
        return LwposeError(f"{source}: {field} must be {rule}, got {json.dumps(value)}")

    def number(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if "stride" in meta and (meta["stride"] != STRIDE or not number(meta["stride"])):
        raise bad("stride", f"{STRIDE} (the output stride of the Lightweight OpenPose family)", meta["stride"])
    spec = meta["input"]
    if not isinstance(spec, dict):
        raise bad("input", "an object", spec)
    if spec.get("layout") not in LAYOUTS:
        raise bad("input.layout", " or ".join(LAYOUTS), spec.get("layout"))
    if spec.get("element_type") not in ELEMENT_TYPES:
        raise bad("input.element_type", " or ".join(ELEMENT_TYPES), spec.get("element_type"))
    if not isinstance(spec.get("normalisation_in_graph"), bool):
        raise bad("input.normalisation_in_graph", "true or false", spec.get("normalisation_in_graph"))
    for field in ("mean", "scale"):
        if field in spec or not spec["normalisation_in_graph"]:
            value = spec.get(field)
            if not number(value) or (field == "scale" and value <= 0):
                raise bad(f"input.{field}", "a finite number" + (" above 0" if field == "scale" else ""), value)
    outputs = meta["outputs"]
    for role in ("heatmaps", "pafs"):
        name = outputs.get(role) if isinstance(outputs, dict) else None
        if not isinstance(name, str) or not name:
            raise bad(f"outputs.{role}", "an output name", name)


def _checked(meta: object, where: Path) -> dict:
    if not isinstance(meta, dict) or not {"input", "outputs"} <= meta.keys():
        raise LwposeError(f"{where}: not lwpose model metadata (no 'input' and 'outputs')")
    check_metadata(meta, where)
    return meta


def _rt_info(xml: Path) -> str | None:
    """The ``rt_info`` metadata string of an IR, read from its XML (no OpenVINO needed)."""
    import xml.etree.ElementTree as ET

    try:
        for _, element in ET.iterparse(xml):
            if element.tag == RT_INFO_KEY:
                return element.get("value")
            if element.tag == "layers":
                element.clear()  # the graph is not needed
    except ET.ParseError as exc:
        raise LwposeError(f"{xml}: not a readable IR ({exc})") from None
    return None
