"""The one helper that loads a JSON or YAML file, with errors naming the parameter and the file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import LwposeError


def load_file(path: str | Path, param: str, kind: str | None = None) -> Any:
    """The parsed contents of a JSON or YAML file (``kind`` ``json`` or ``yaml``; default: YAML
    for ``.yaml``/``.yml``, else JSON); LwposeError naming ``param`` and the file when it is
    missing or does not parse."""
    path = Path(path)
    kind = kind or ("yaml" if path.suffix.lower() in (".yaml", ".yml") else "json")
    if not path.is_file():
        raise LwposeError(f"{param} {path}: file not found", param=param)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LwposeError(f"{param} {path}: cannot read it ({exc})", param=param) from None
    if kind == "yaml":
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LwposeError(f"{param} {path}: not valid YAML ({str(exc).splitlines()[0]})", param=param) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LwposeError(f"{param} {path}: not valid JSON ({exc})", param=param) from None
