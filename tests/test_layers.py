"""The house stays layered: no module imports a layer above its own (lower layers never know the front ends)."""
from __future__ import annotations

import ast

from tests.conftest import REPO

PACKAGE = REPO / "lipsync_core"
#: Layer of each top-level module or sub-package, lowest first; a module may import its own layer or lower ones.
LAYERS = {
    "errors": 0, "batching": 0, "paths": 0, "environment": 0, "files": 0, "safety": 0, "hardware": 0,
    "models": 1, "runtime": 2, "quantize": 2, "media": 2, "audio": 2,
    "face": 3, "stages": 4, "acquire": 4, "plan": 5, "config": 6, "score": 6, "pipeline": 7, "batch": 8,
    "training": 8,
    "front": 9, "testing": 9, "__init__": 9, "__main__": 9,
}


def _layer_of(module: str) -> int:
    """A name that is no module (``from .. import __version__``) belongs to the package's ``__init__``."""
    return LAYERS.get(module.split(".")[0], LAYERS["__init__"])


def _imports(source: str, module: str) -> list[str]:
    """``lipsync_core``-relative names imported by ``source`` of ``module`` (relative, absolute and lazy imports)."""
    here = module.split(".")[:-1]
    found = []
    tree = ast.parse(source)
    typing_only = {id(n) for node in ast.walk(tree)
                   if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: no import at run time
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                names = [target] if node.module else [".".join([*base, a.name]) for a in node.names]
            elif node.module and node.module.startswith("lipsync_core."):
                names = [node.module.removeprefix("lipsync_core.")]
            else:
                continue
            found += [n for n in names if n]
        elif isinstance(node, ast.Import):
            found += [a.name.removeprefix("lipsync_core.") for a in node.names if a.name.startswith("lipsync_core.")]
    return found


def test_every_module_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert "__version__" not in LAYERS
    assert tops <= set(LAYERS), sorted(tops - set(LAYERS))


def test_no_module_imports_a_higher_layer():
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        own = _layer_of(module)
        for name in _imports(path.read_text(encoding="utf-8"), module):
            if name and _layer_of(name) > own:
                upward.append(f"{path.relative_to(REPO)} imports {name}")
    assert not upward, "\n".join(upward)


def test_the_check_sees_an_upward_import():
    """The walker itself: a face module importing the CLI, lazily, is caught."""
    names = _imports("def f():\n    from ..front.cli import main\n", "face.detector")
    assert names == ["front.cli"] and _layer_of("front.cli") > _layer_of("face.detector")


def test_only_the_environment_module_reads_environment_variables():
    """Configuration comes through RunConfig and arguments; the few variables honoured are read in one place."""
    readers = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
               if "os.environ" in p.read_text(encoding="utf-8") or "getenv" in p.read_text(encoding="utf-8")]
    assert readers == ["lipsync_core/environment.py"]
