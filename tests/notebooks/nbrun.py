"""Reading and running the suite's notebooks headlessly: form fields, value injection, a kernel on this Python."""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOKS = REPO / "notebooks"
#: A Colab form field: ``name = value  #@param ...``.
PARAM = re.compile(r"^(?P<indent>\s*)(?P<name>\w+)(?P<eq>\s*=\s*)(?P<value>.*?)(?P<spec>\s*#@param.*)$")
KERNEL = "lipsync-test"


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def fields(cell_or_nb: Any) -> dict[str, Any]:
    """``{name: default}`` of the form fields in a cell or a whole notebook."""
    cells = cell_or_nb.cells if "cells" in cell_or_nb else [cell_or_nb]
    out = {}
    for cell in cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            m = PARAM.match(line)
            if m:
                out[m["name"]] = ast.literal_eval(m["value"])
    return out


def cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.get("id") == cell_id)


def set_form_params(nb: nbformat.NotebookNode, **params: Any) -> None:
    """Rewrite ``name = value  #@param`` lines, as filling in the Colab form does; every name must exist."""
    missing = set(params)
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        lines = c.source.split("\n")
        for i, line in enumerate(lines):
            m = PARAM.match(line)
            if m and m["name"] in params:
                lines[i] = f"{m['indent']}{m['name']}{m['eq']}{params[m['name']]!r}{m['spec']}"
                missing.discard(m["name"])
        c.source = "\n".join(lines)
    if missing:
        raise KeyError(f"no form field(s) {sorted(missing)} in the notebook")


def install_kernel(root: Path) -> Path:
    """A kernelspec that runs this very interpreter; returns the folder to put on ``JUPYTER_PATH``."""
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "lipsync_core tests", "language": "python"}))
    return root


def execute(nb: nbformat.NotebookNode, cwd: Path, *, timeout: int = 300,
            allow_errors: bool = False) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel (this Python, the current environment) with ``cwd`` as its folder."""
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def outputs_text(c: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed as text/HTML, joined."""
    parts = []
    for out in c.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type in ("display_data", "execute_result"):
            parts += [str(out.data.get(k, "")) for k in ("text/html", "text/plain")]
        elif out.output_type == "error":
            parts += out.traceback
    return "\n".join(parts)
