"""Front ends generated from RunOptions: the CLI, the API and the notebook helpers agree on every option."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from lipsync_core import __version__
from lipsync_core.engine.catalog import CATALOG
from lipsync_core.engine.options import GROUPS, RunOptions, option_fields
from lipsync_core.engine.plan import make_config, preset_config
from lipsync_core.front import notebook as ln
from lipsync_core.front.cli import build_parser
from lipsync_core.support.errors import LipsyncError
from lipsync_core.support.options import field_default


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lipsync_core", *args], capture_output=True, text=True, cwd=cwd)


#: A valid non-default value and an invalid one per option, to check that all front ends accept and refuse alike.
SAMPLES = {
    "variant": ("hq", "gfpgan"), "static": (True, None), "fps": (30.0, float("inf")),
    "pads": ((0, 20, 0, 0), (-1, 0, 0, 0)),
    "face_det_batch_size": (8, 0), "wav2lip_batch_size": (64, 0), "resize_factor": (2, 0),
    "crop": ((0, 100, 0, -1), (100, 50, 0, -1)), "box": ((10, 90, 10, 90), (90, 10, 10, 90)), "rotate": (True, None),
    "nosmooth": (True, None), "device": ("cpu", "tpu"), "dtype": ("int8", "float64"), "compile": (True, None),
    "detector": ("haar", "dlib"), "det_size": (0, -5), "det_stride": (4, 0), "face_point": ((10, 20), None),
    "blend": ("hard", "soft"), "audio_offset_ms": (40.0, float("nan")), "no_track_cache": (True, None),
    "cache_dir": ("/tmp/c", None), "crf": (23, 99), "preset": ("fast", None), "no_progress": (True, None),
    "quiet": (True, None), "start": ("1.5", None), "end": ("2", None), "audio_start": ("0.5", None),
    "audio_end": ("3", None), "cookies": ("c.txt", None), "max_seconds": (60.0, -1.0),
    "no_sr": (True, None), "no_segmentation": (True, None), "mask_feather": (4, -1), "mask_lower_face": (0.5, 2.0),
    "fidelity": (0.5, 2.0), "sharpen": (1.0, 9.0), "upscale": (2, 3),
    "silence_gate_db": (-45.0, 5.0), "score": (True, None), "scorer": ("expert", "wav2lip"), "fix_offset": (True, None),
    "track_box": (("10 90 10 90 @1.5",), ("10 90 @x",)), "box_keyframes": ("keyframes.json", None),
    "mask_region": ("mouth", "nose"), "mouth_scale": (1.5, 0.0),
    "mouth_box": (("10 40 20 60 @0.5",), ("10 40 @y",)), "mouth_chart": ("drawings", None), "hold_frames": (2, 4),
    "dialog_file": ("line.txt", None), "recognizer": ("phonetic", "whisper"), "extended_shapes": ("GX", "GQ"),
}
#: Other options a sample needs (``--mouth_scale`` sizes the ``--mask_region mouth`` region).
NEEDS = {"mouth_scale": {"mask_region": "mouth"}}
#: Options that belong to a variant's stages: sampled with that variant.
VARIANT_OF = {"no_sr": "hq", "no_segmentation": "hq", "mask_feather": "hq", "mask_lower_face": "hq",
              "fidelity": "codeformer", "sharpen": "codeformer", "upscale": "codeformer",
              **{name: "chart" for name in ("mouth_box", "mouth_chart", "hold_frames", "dialog_file", "recognizer",
                                             "extended_shapes")}}


def test_every_option_has_a_sample():
    assert set(SAMPLES) == {f.name for f in option_fields()}


@pytest.mark.parametrize("f", option_fields(), ids=lambda f: f.name)
def test_cli_api_and_notebook_agree_on_an_option(f):
    good, bad = SAMPLES[f.name]
    variant = VARIANT_OF.get(f.name, "original")
    parser = build_parser(variant)
    action = next(a for a in parser._actions if a.dest == f.name)
    # The same name everywhere, the default shown is the preset's.
    assert action.option_strings == [f"--{f.name}"]
    shown = getattr(preset_config(variant), f.name)
    if not isinstance(shown, bool) or f.name == "static":
        expected = "unset" if shown is None else " ".join(map(str, shown)) if isinstance(shown, tuple) else str(shown)
        assert f"(default: {expected})" in action.help
    # The CLI passes on a given value as the API would receive it.
    needs = NEEDS.get(f.name, {})
    argv = ["--face", "f", "--audio", "a"] + (["--variant", variant] if f.name != "variant" else [])
    argv += [w for k, v in needs.items() for w in (f"--{k}", str(v))]
    if f.metadata.get("repeat"):
        flag_value = good[0].split()
    else:
        flag_value = [] if isinstance(good, bool) else [str(v) for v in (good if isinstance(good, tuple) else (good,))]
    parsed = vars(parser.parse_args([*argv, f"--{f.name}", *flag_value]))
    api_options = {k: v for k, v in parsed.items() if k not in ("face", "audio", "outfile")}
    from_cli = make_config(**api_options)
    given = {f.name: good, **needs} if f.name != "variant" else {}
    from_api = make_config(variant if f.name != "variant" else good, **given)
    assert getattr(from_cli, f.name) == getattr(from_api, f.name) == good
    job = ln.Job(variant)
    if f.name not in ("variant",):
        job.set_settings(**given)
        assert job.run_options()[f.name] == good
    # Invalid values are refused with the flag named, by the API and by the notebook the same way.
    if bad is not None and f.name != "variant":
        with pytest.raises(LipsyncError, match=f"--{f.name}"):
            make_config(variant, **{**needs, f.name: bad})
        with pytest.raises(LipsyncError, match=f"--{f.name}"):
            ln.Job(variant).set_settings(**{**needs, f.name: bad})


def test_every_role_has_a_path_flag():
    parser = build_parser()
    dests = {a.dest for a in parser._actions}
    assert {r.option for r in CATALOG.roles.values()} <= dests
    assert make_config(checkpoint_path="x.pth", s3fd_path="y.pth").weights == {"checkpoint": "x.pth", "s3fd": "y.pth"}


def test_the_api_accepts_the_flag_names():
    cfg = make_config("original", no_track_cache=True, no_progress=True, quiet=True)
    assert cfg.no_track_cache and cfg.no_progress and cfg.quiet and not cfg.progress


def test_an_unknown_api_option_names_the_closest():
    with pytest.raises(LipsyncError, match=r"unknown option\(s\): pad \(did you mean pads\?\)"):
        make_config("original", pad=(0, 0, 0, 0))


def test_a_preset_value_is_honoured_unless_given_explicitly():
    assert make_config("codeformer").detector == "retinaface"
    assert make_config("codeformer", detector="haar").detector == "haar"
    assert make_config(variant="codeformer").detector == "retinaface"


def test_variant_help_shows_that_variants_defaults():
    res = cli("--variant", "codeformer", "--help")
    assert res.returncode == 0
    flat = " ".join(res.stdout.split())
    assert "face detector (default: retinaface)" in flat
    assert "(default for codeformer: wav2lip_gan)" in flat
    assert "face detector (default: s3fd)" in " ".join(cli("--help").stdout.split())


def test_a_mistyped_flag_is_one_line_with_the_closest_flag_and_exit_2(tmp_path):
    res = cli("--face", "f.mp4", "--audio", "a.wav", "--pad", "0", "10", "0", "0", cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert "--pad (did you mean --pads?)" in res.stderr and "usage:" not in res.stderr


def test_abbreviations_are_not_accepted(tmp_path):
    res = cli("--face", "f.mp4", "--audio", "a.wav", "--wav2lip_batch", "8", cwd=tmp_path)
    assert res.returncode == 2 and "--wav2lip_batch_size" in res.stderr


def test_version():
    res = cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"lipsync_core {__version__}"


def test_no_option_field_is_left_out_of_the_front_ends():
    groups = {f.name: f for f in fields(RunOptions) if f.name in GROUPS}
    every = {g.name for f in groups.values() for g in fields(GROUPS[f.name])} | {f.name for f in fields(RunOptions)}
    internal = every - set(groups) - {f.name for f in option_fields()}
    assert internal == {"weights", "cut_threshold", "smooth_window"}  # the role map; fixed tracker settings
    assert all(field_default(f) is not None or "unset" for f in option_fields())
