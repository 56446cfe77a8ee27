"""The house stays layered: each folder is one layer, imports only go down, and no modules or folders form a cycle.

Every import counts: module-level, lazy (inside a function) and type-only (under ``TYPE_CHECKING``), since each
of them is a dependency a reader has to hold in mind and a lazy one is still an upward call at run time.
"""
from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "lipsync_core"
#: The layers, lowest first: each top-level folder (or module) of the package and the layer it is in. A module
#: may import modules of its own folder and of lower layers, never of a higher one.
LAYERS: dict[str, int] = {
    "support": 0,  # errors, environment, paths, files, locks, safety: no torch
    "models": 1,  # pure nn.Modules, their cards, checkpoint loading
    "compute": 2,  # runtime (device, dtype policy), model handles, quantization, chunking
    "media": 3,  # ffmpeg, probing, frame readers/writers, audio
    "weights": 4,  # manifest, cache, verified downloads
    "inputs": 5,  # local / Drive / URL / YouTube inputs with trims
    "face": 6,  # detectors, tracking, the face-track cache
    "stages": 7,  # the render stages
    "cues": 8,  # mouth cues from speech (2D animation); no torch
    "engine": 9,  # options, catalog, plan, session, the two passes
    "score": 10,  # sync scoring over the session
    "job": 11,  # one lip-sync run, then its score hooks
    "batch": 12, "training": 12,  # many runs; fine-tuning
    "front": 13,  # command line and notebooks
    "testing": 14, "__init__": 14, "__main__": 14,  # procedural test helpers; the package root's lazy exports
}


def _top(module: str) -> str:
    """The top-level folder or module of a ``lipsync_core``-relative module name (a name that is no module,
    ``from .. import __version__``, belongs to the package root)."""
    top = module.split(".")[0]
    return top if top in LAYERS else "__init__"


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {".".join(p.relative_to(package).with_suffix("").parts).removesuffix(".__init__"): p
            for p in package.rglob("*.py")}


def _imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """``lipsync_core``-relative names imported anywhere in ``source`` of ``module``: relative and absolute,
    module-level, lazy and under ``TYPE_CHECKING`` alike."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module + ".").startswith("lipsync_core."):
                target = node.module.removeprefix("lipsync_core").lstrip(".")
            else:
                continue
            found += [f"{target}.{a.name}".lstrip(".") for a in node.names]  # a name or a submodule
        elif isinstance(node, ast.Import):
            found += [a.name.removeprefix("lipsync_core.") for a in node.names if a.name.startswith("lipsync_core.")]
    return found


def _resolve(name: str, modules: Iterable[str]) -> str:
    """The module ``name`` refers to: itself, or the longest module that is a prefix of it (``pkg.mod.Class``)."""
    known = set(modules)
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    return "__init__"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports (every kind of import)."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        names = _imports(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        graph[module] = {m for m in (_resolve(n, modules) for n in names) if m != module}
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} imports {b}" for a, targets in graph.items() for b in targets
                  if LAYERS[_top(b)] > LAYERS[_top(a)])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """folder -> the other folders its modules import."""
    out: dict[str, set[str]] = {}
    for a, targets in graph.items():
        out.setdefault(_top(a), set()).update(_top(b) for b in targets if _top(b) != _top(a))
    return out


def test_every_top_level_folder_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in PACKAGE.rglob("*.py")}
    assert tops <= set(LAYERS), sorted(tops - set(LAYERS))


def test_no_module_imports_a_higher_layer():
    assert not upward_imports(import_graph()), "\n".join(upward_imports(import_graph()))


def test_no_modules_form_a_cycle():
    assert not cycles(import_graph())


def test_no_folders_form_a_cycle():
    assert not cycles(folder_graph(import_graph()))


def _write(root: Path, files: dict[str, str]) -> Path:
    package = root / "lipsync_core"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


def test_the_check_sees_a_lazy_upward_import(tmp_path):
    """A face module importing the CLI inside a function is caught."""
    package = _write(tmp_path, {"face/__init__.py": "", "face/track.py": "def f():\n    from ..front.cli import main\n",
                                "front/__init__.py": "", "front/cli.py": "def main(): pass\n"})
    assert upward_imports(import_graph(package)) == ["face.track imports front.cli"]


def test_the_check_sees_a_type_only_upward_import(tmp_path):
    package = _write(tmp_path, {"media/__init__.py": "",
                                "media/video.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                                  "    from lipsync_core.engine.plan import Plan\n",
                                "engine/__init__.py": "", "engine/plan.py": "class Plan: pass\n"})
    assert upward_imports(import_graph(package)) == ["media.video imports engine.plan"]


def test_the_check_sees_a_cycle_inside_a_folder(tmp_path):
    package = _write(tmp_path, {"engine/__init__.py": "", "engine/options.py": "from .plan import Plan\n",
                                "engine/plan.py": "def f():\n    from . import options\n"})
    assert cycles(import_graph(package)) == [["engine.options", "engine.plan"]]


def test_the_check_sees_a_cycle_between_folders():
    graph = {"media.video": {"weights.store"}, "weights.store": {"media.probe"}, "media.probe": set()}
    assert cycles(folder_graph(graph)) == [["media", "weights"]]


def test_only_the_environment_module_reads_environment_variables():
    """Configuration comes through the options and arguments; the few variables honoured are read in one place."""
    readers = [str(p.relative_to(REPO)) for p in PACKAGE.rglob("*.py")
               if "os.environ" in p.read_text(encoding="utf-8") or "getenv" in p.read_text(encoding="utf-8")]
    assert readers == ["lipsync_core/support/environment.py"]
