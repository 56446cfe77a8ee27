"""The installed package carries the manifest (Colab installs from git, non-editable)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_a_built_wheel_carries_the_top_level_manifest_and_uses_it(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist)], check=True, cwd=tmp_path)
    (wheel,) = dist.glob("lipsync_core-*.whl")
    with zipfile.ZipFile(wheel) as z:
        packaged = json.loads(z.read("lipsync_core/weights_manifest.json"))
        in_wheel = {n for n in z.namelist() if n.endswith(".py")}
    assert in_wheel == {p.relative_to(REPO).as_posix() for p in (REPO / "lipsync_core").rglob("*.py")}
    assert packaged == json.loads((REPO / "weights_manifest.json").read_text())

    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("LIPSYNC_MANIFEST", None)
    code = ("from lipsync_core.weights.manifest import load_manifest, manifest_path; m = load_manifest(); "
            "print(manifest_path()); print(sorted(m.weights))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert Path(out[0]).is_relative_to(target)
    assert out[1] == str(sorted(packaged["weights"]))
