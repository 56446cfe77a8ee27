"""The committed notebooks: generated, stripped, linted, and every default they show agrees with the package."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys

import pytest

from lipsync_core import REPO_URL
from lipsync_core.engine.catalog import CATALOG
from lipsync_core.engine.plan import make_config
from lipsync_core.front.notebook import GENERATORS, colab_url, settings_options
from lipsync_core.weights.manifest import load_manifest
from tests.conftest import REPO
from tests.notebooks import nbrun
from tests.support.scripts import script_module

FULL = {"lipsync_original.ipynb": "original", "lipsync_hq.ipynb": "hq", "lipsync_hq_gan.ipynb": "hq_gan",
        "lipsync_codeformer.ipynb": "codeformer"}
ALL = [*FULL, "lipsync_simple.ipynb", "lipsync_finetune.ipynb", "lipsync_2d.ipynb"]
SETTINGS_ONLY = {"use_gan_model"}  # settings fields that are not RunOptions options


@pytest.fixture(scope="module")
def builder():
    with script_module(REPO / "notebooks" / "build_notebooks.py") as module:
        yield module


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(REPO / "weights_manifest.json")


def test_the_suite_is_exactly_the_seven_notebooks():
    assert sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")) == sorted(ALL)


def test_committed_notebooks_equal_the_generated_ones(builder):
    rendered = builder.render_all()
    assert sorted(rendered) == sorted(ALL)
    stale = [name for name, text in rendered.items()
             if (REPO / "notebooks" / name).read_text(encoding="utf-8") != text]
    assert not stale, f"run `python notebooks/build_notebooks.py` to regenerate {stale}"


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_committed_without_outputs(name):
    for c in nbrun.read(name).cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, c.id


@pytest.mark.parametrize("name", ALL)
def test_install_url_is_the_package_repo_url(name):
    setup = nbrun.cell(nbrun.read(name), "setup").source
    assert re.findall(r'^REPO_URL = "(.*)"$', setup, re.M) == [REPO_URL]
    assert 'f"lipsync_core[notebook] @ git+{REPO_URL}"' in setup
    assert '"--upgrade", "yt-dlp[default]"' in setup
    assert 'if importlib.util.find_spec("lipsync_core") is None:' in setup


@pytest.mark.parametrize("name", ALL)
def test_badge_opens_this_notebook_from_the_repo(name):
    intro = nbrun.read(name).cells[0]
    assert intro.cell_type == "markdown"
    assert f"(https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(name)})" in intro.source
    owner_repo = REPO_URL.removeprefix("https://github.com/")
    assert colab_url(name) == f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{name}"


@pytest.mark.parametrize("name, variant", FULL.items())
def test_weights_form_has_one_field_per_role_and_defaults_from_the_manifest(name, variant, manifest):
    c = nbrun.cell(nbrun.read(name), "weights")
    form = nbrun.fields(c)
    roles = {**CATALOG.variant_weights(variant), **CATALOG.other_detector_weights(variant)}
    assert {k for k in form if k.endswith("_path")} == {f"{role}_path" for role in roles}
    assert {"s3fd", "retinaface", "anime"} <= set(roles)  # whichever detector is picked, its file can be given
    for role, wid in roles.items():
        entry = manifest.entry(wid)
        default = form[f"{role}_path"]
        assert default == "" or default in {s.target for s in entry.sources}  # empty = the manifest's sources
        shown = re.search(rf"\*\*{role}_path\*\*.*\n#@markdown Default: `([^`]+)`", c.source)
        assert shown is not None and shown[1] == entry.file


@pytest.mark.parametrize("name, variant", FULL.items())
def test_settings_form_defaults_are_the_variants_defaults(name, variant, manifest):
    form = nbrun.fields(nbrun.cell(nbrun.read(name), "settings"))
    options = settings_options(**{k: v for k, v in form.items() if k not in SETTINGS_ONLY})
    assert make_config(variant, **options) == make_config(variant)
    if "use_gan_model" in form:
        assert GENERATORS[form["use_gan_model"]] == CATALOG.weight_id(variant, "checkpoint")


def test_settings_forms_cover_the_original_options_and_each_variants_own():
    common = {"pad_top", "pad_bottom", "pad_left", "pad_right", "resize_factor", "nosmooth", "face_det_batch_size",
              "wav2lip_batch_size", "detector", "det_size", "det_stride", "blend", "device", "mask_region",
              "mouth_scale"}
    own = {"original": {"use_gan_model"}, "hq": {"super_resolution", "segmentation_mask", "mask_feather",
                                                 "mask_lower_face"},
           "codeformer": {"use_gan_model", "fidelity", "sharpen", "upscale"}}
    own["hq_gan"] = own["hq"]
    for name, variant in FULL.items():
        assert set(nbrun.fields(nbrun.cell(nbrun.read(name), "settings"))) == common | own[variant], name


def test_simple_notebook_has_only_the_fewest_fields_and_runs_original(manifest):
    nb = nbrun.read("lipsync_simple.ipynb")
    assert set(nbrun.fields(nb)) == {"video", "start", "end", "audio", "pad_top", "pad_bottom", "pad_left",
                                     "pad_right", "use_gan_model"}
    assert 'job = ln.setup("original")' in nbrun.cell(nb, "setup").source
    assert nbrun.fields(nb)["use_gan_model"] is (CATALOG.weight_id("original", "checkpoint") == GENERATORS[True])


def test_finetune_notebook_defaults_are_the_training_defaults():
    from lipsync_core.training.config import TrainConfig
    from lipsync_core.training.prepare import PrepareConfig

    nb = nbrun.read("lipsync_finetune.ipynb")
    train, prep = TrainConfig(dataset="-"), PrepareConfig()
    form = nbrun.fields(nbrun.cell(nb, "train"))
    assert form == {k: getattr(train, k) for k in ("gan", "steps", "batch_size", "lr", "eval_interval", "device")}
    clips = nbrun.fields(nbrun.cell(nb, "clips"))
    assert (clips["clip_seconds"], clips["sync_check"]) == (prep.clip_seconds, not prep.no_sync_check)
    assert clips["detector"] == make_config().detector
    assert "job = ft.setup()" in nbrun.cell(nb, "setup").source


@pytest.mark.parametrize("name", ALL)
def test_every_form_field_is_passed_on(name):
    for c in nbrun.read(name).cells:
        if c.cell_type != "code":
            continue
        code = "\n".join(line for line in c.source.splitlines() if not nbrun.PARAM.match(line))
        for field in nbrun.fields(c):
            assert re.search(rf"\b{field}\b", code), f"{name}: form field {field} is never used"


@pytest.mark.parametrize("name", ALL)
def test_cells_hold_forms_and_calls_only(name):
    """Thin notebooks: outside the setup cell, code is form fields plus calls on ``job``/``ln``."""
    for c in nbrun.read(name).cells:
        if c.cell_type != "code" or c.id == "setup":
            continue
        assert c.metadata.get("cellView") == "form"
        code = [line for line in c.source.splitlines()
                if line and not line.startswith("#@") and not nbrun.PARAM.match(line)]
        statements = [line for line in code if not line.startswith((" ", ")"))]
        assert statements and all(re.match(r"(\w+ = )?job\.\w+\(", s) for s in statements), statements


def test_2d_notebook_runs_the_chart_variant_with_its_defaults():
    nb = nbrun.read("lipsync_2d.ipynb")
    assert 'job = ln.setup("chart")' in nbrun.cell(nb, "setup").source
    form = nbrun.fields(nbrun.cell(nb, "mouth"))
    assert set(form) == {"mouth_chart", "mouth_box", "detector", "hold_frames", "extended_shapes", "recognizer"}
    cfg = make_config("chart")
    assert (form["mouth_chart"], form["hold_frames"], form["extended_shapes"], form["recognizer"]) == (
        cfg.mouth_chart, cfg.hold_frames, cfg.extended_shapes, cfg.recognizer)
    assert form["mouth_box"] == "" and cfg.mouth_box is None and form["detector"] == "none" and cfg.detector is None
    assert set(nbrun.fields(nbrun.cell(nb, "transcript"))) == {"transcript"}


def test_notebooks_pass_ruff():
    if importlib.util.find_spec("ruff") is None and shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (it is in the test extra)")
    cmd = [sys.executable, "-m", "ruff"] if importlib.util.find_spec("ruff") else ["ruff"]
    res = subprocess.run([*cmd, "check", "--no-cache", "notebooks"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_readme_links_every_notebook_with_its_colab_badge():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f"({colab_url(path.name)})" in readme, path.name
