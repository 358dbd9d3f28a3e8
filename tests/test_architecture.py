"""The import contract of docs/architecture.md: imports point down the layer table only, and the
light layers import without the heavy frameworks (checked in fresh interpreters)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lwpose"

#: Layers, lowest first: a module may import its own layer and the ones before it (docs/architecture.md).
LAYERS = [
    ("core", ["lwpose", "lwpose.errors", "lwpose.files", "lwpose.pose", "lwpose.decode", "lwpose.track",
              "lwpose.smooth", "lwpose.draw", "lwpose.media", "lwpose.preprocess", "lwpose.store"]),
    ("networks", ["lwpose.model", "lwpose.checkpoint"]),
    ("backends", ["lwpose.backends"]),
    ("runtime", ["lwpose.runtime"]),
    ("pipeline", ["lwpose.pipeline", "lwpose.serve"]),
    ("tools", ["lwpose.convert", "lwpose.eval", "lwpose.train"]),
    ("front ends", ["lwpose.cli", "lwpose.__main__", "lwpose.commands", "lwpose.train.__main__"]),
]
#: Tools that must not import each other (importer, imported).
FORBIDDEN = [("lwpose.convert", "lwpose.eval"), ("lwpose.eval", "lwpose.convert"), ("lwpose.train", "lwpose.convert")]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    """Index of the layer holding ``module`` (the longest matching prefix wins)."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{module} is in no layer of LAYERS (add it, and to docs/architecture.md)"
    return index


def imports(module: str, path: Path) -> set[str]:
    """The lwpose modules ``module`` imports, anywhere in its file (lazy imports included)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "lwpose")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "lwpose":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found


def test_every_module_has_a_layer_and_imports_point_down() -> None:
    wrong = []
    for module, path in sorted(MODULES.items()):
        own = layer(module)
        for imported in sorted(imports(module, path)):
            if layer(imported) > own:
                wrong.append(f"{module} ({LAYERS[own][0]}) imports {imported} ({LAYERS[layer(imported)][0]})")
            for importer, forbidden in FORBIDDEN:
                if module.startswith(importer) and (imported == forbidden or imported.startswith(forbidden + ".")):
                    wrong.append(f"{module} imports {imported}: {importer} never imports {forbidden}")
    assert not wrong, "\n".join(wrong)


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    path = tmp_path / "preprocess.py"
    path.write_text("from .runtime import PoseModel\nfrom lwpose.pipeline import Pipeline\n")
    found = imports("lwpose.preprocess", path)
    assert found == {"lwpose.runtime", "lwpose.pipeline"}
    assert all(layer(m) > layer("lwpose.preprocess") for m in found)


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is blocked")
sys.meta_path.insert(0, Block())
import {module}
"""


@pytest.mark.parametrize("module, blocked", [
    ("lwpose.preprocess", ("openvino", "torch")),
    ("lwpose.media", ("openvino", "torch")),
    ("lwpose.train.dataset", ("openvino",)),
    ("lwpose.eval.coco", ("openvino", "torch")),
    ("lwpose.backends", ("openvino", "torch")),
    ("lwpose.runtime", ("torch",)),
    ("lwpose.pipeline", ("torch",)),
    ("lwpose.pipeline.bench", ("torch",)),
])
def test_light_layers_import_without_heavy_frameworks(module: str, blocked: tuple[str, ...]) -> None:
    code = BLOCK.format(blocked=set(blocked), module=module)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
