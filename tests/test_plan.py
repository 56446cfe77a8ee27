"""The run plan: roles, variants and stages declared once, and everything a run reads from them."""
from __future__ import annotations

import pytest

from lipsync_core.engine.catalog import CATALOG
from lipsync_core.engine.plan import Plan, make_config
from lipsync_core.models.registry import FILE_SPECS, SPECS
from lipsync_core.support.errors import LipsyncError
from lipsync_core.weights.manifest import load_manifest
from tests.conftest import REPO


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(REPO / "weights_manifest.json")


def test_every_role_default_is_a_manifest_weight_of_a_registry_arch(manifest):
    for role in CATALOG.roles.values():
        arch = manifest.entry(role.default).arch
        assert arch in SPECS or arch in FILE_SPECS, role.name


def test_every_manifest_weight_fills_some_role(manifest):
    from lipsync_core.training.config import ROLES as TRAINING_ROLES  # the discriminator is only trained

    used = {CATALOG.weight_id(v, r) for v in CATALOG.variants for r in CATALOG.roles}
    used |= {role.default for role in TRAINING_ROLES.values()}
    assert set(manifest.weights) <= used


def test_variant_weight_tables(manifest):
    assert CATALOG.variant_weights("original") == {"s3fd": "s3fd", "checkpoint": "wav2lip"}
    hq, hq_gan = CATALOG.variant_weights("hq"), CATALOG.variant_weights("hq_gan")
    assert (hq.pop("checkpoint"), hq_gan.pop("checkpoint")) == ("wav2lip", "wav2lip_gan")
    assert hq == hq_gan == {"s3fd": "s3fd", "sr": "esrgan_yunying", "segmentation": "face_segmentation"}
    assert CATALOG.variant_weights("codeformer") == {
        "retinaface": "retinaface_resnet50", "checkpoint": "wav2lip_gan", "upscaler": "realesrgan_x2",
        "codeformer": "codeformer", "parsenet": "parsenet"}


def test_each_role_loads_one_architecture(manifest):
    for role in CATALOG.roles.values():
        archs = {manifest.entry(CATALOG.weight_id(v, role.name)).arch for v in CATALOG.variants}
        assert len(archs) == 1, (role.name, archs)


@pytest.mark.parametrize(("variant", "options", "roles"), [
    ("original", {}, ["s3fd", "checkpoint"]),
    ("original", {"box": (0, 10, 0, 10)}, ["checkpoint"]),
    ("original", {"detector": "haar"}, ["checkpoint"]),
    ("hq", {}, ["s3fd", "checkpoint", "sr", "segmentation"]),
    ("hq", {"no_sr": True, "no_segmentation": True}, ["s3fd", "checkpoint"]),
    ("codeformer", {}, ["retinaface", "checkpoint", "codeformer", "parsenet"]),
    ("codeformer", {"upscale": 2}, ["retinaface", "checkpoint", "upscaler", "codeformer", "parsenet"]),
    ("original", {"detector": "haar", "score": True}, ["checkpoint", "syncnet"]),
    ("original", {"detector": "haar", "fix_offset": True}, ["checkpoint", "syncnet"]),
    ("original", {"detector": "haar", "score": True, "scorer": "expert", "fix_offset": True},
     ["checkpoint", "expert", "syncnet"]),
])
def test_plan_roles_are_only_what_the_run_loads(variant, options, roles):
    assert Plan.from_options(make_config(variant, **options)).roles == roles


def test_plan_stage_order_scale_and_landmarks():
    plan = Plan.from_options(make_config("codeformer", upscale=2, sharpen=1.0))
    assert [s.name for s in plan.stages] == ["sync", "blend", "upscale", "codeformer", "sharpen"]
    assert plan.scale == 2 and plan.needs_landmarks
    plain = Plan.from_options(make_config("original"))
    assert [s.name for s in plain.stages] == ["sync", "blend"] and plain.scale == 1 and not plain.needs_landmarks


def test_a_stage_option_outside_its_variant_is_refused():
    with pytest.raises(LipsyncError, match="--upscale needs --variant codeformer"):
        make_config("original", upscale=2)
    with pytest.raises(LipsyncError, match="--no_sr needs --variant hq or hq_gan"):
        make_config("original", no_sr=True)


def test_slow_stages_bound_cpu_render_batches_so_progress_moves():
    assert Plan.from_options(make_config("codeformer")).cpu_frames == 1
    assert Plan.from_options(make_config("hq")).cpu_frames == 4
    assert Plan.from_options(make_config("original")).cpu_frames is None
