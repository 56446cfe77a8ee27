"""Run configuration: one dataclass whose fields are the CLI flags, with the metadata front ends are built from.

Every option is "unset" until resolved (:func:`make_config`): a value given explicitly wins, then the variant's
preset (:class:`~lipsync_core.engine.plan.Variant`), then the field's default here. Weights are one mapping
role -> source; the API and the CLI take them as ``<role>_path`` (``checkpoint_path``, ``s3fd_path``, ...).
Validation happens here, once, for every front end.
"""
from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from ..face.boxtrack import parse_track_box
from ..face.track import DetectionSettings
from ..stages.masks import MAX_MOUTH_SCALE
from ..support.errors import LipsyncError
from .plan import CATALOG, SCORERS, Catalog

# What Runtime.resolve accepts (kept here, beside the options, so reading the options never imports torch).
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16", "int8")
BLENDS = ("feather", "hard")
MASK_REGIONS = ("lower", "mouth")


def opt(default: Any, help: str, group: str = "this package's options", *, choices: Any = None,
        metavar: Any = None, check: Any = None, message: str = "", repeat: bool = False) -> Any:
    """A RunConfig field with front-end metadata. ``choices`` may be a callable of the catalog; ``check`` a
    predicate on the value with ``message`` (the one-line error). ``repeat``: a flag given any number of times,
    each with one or more words; the value is a tuple of strings, one per use (words joined by spaces)."""
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, "metavar": metavar,
                                            "check": check, "message": message, "repeat": repeat})


_INPUTS = "inputs (trims apply to the face video; audio_* to the audio)"
_ORIGINAL = "the original inference.py options"
_HQ = "HQ variants"
_CF = "CodeFormer variant"
_OUTPUT = "output and messages"
_SCORE = "sync scoring (LSE-D / LSE-C, A/V offset)"
_HARD = "2D animation and hard faces"
_BOX4 = ("TOP", "BOTTOM", "LEFT", "RIGHT")


_CUDA_N = re.compile(r"cuda:\d{1,3}")


def _positive(v: float) -> bool:
    return v > 0


@dataclass
class RunConfig:
    """Every setting of a run. Field names equal the CLI flags (``--wav2lip_batch_size`` etc.)."""

    variant: str = opt("original", "what runs after Wav2Lip", "variant",
                       choices=lambda cat: tuple(cat.variants))
    # role -> source (path, URL, Drive ID/link or manifest id); absent: the variant's manifest default.
    weights: Mapping[str, str] = field(default_factory=dict)
    # The original inference.py flags.
    static: bool = opt(False, "use only the first frame of the video", _ORIGINAL)
    fps: float = opt(25.0, "frame rate for still images (videos keep their own)", _ORIGINAL,
                     check=lambda v: 1 <= v <= 240,  # below 1 fps one frame outlasts the audio by up to seconds
                     message="--fps must be between 1 and 240 (frames per second of a still image's video)")
    pads: tuple[int, int, int, int] = opt((0, 10, 0, 0), "padding added to the detected face box", _ORIGINAL,
                                          metavar=_BOX4, check=lambda v: all(p >= 0 for p in v),
                                          message="--pads must be non-negative")
    face_det_batch_size: int = opt(16, "frames per face-detector call", _ORIGINAL, check=_positive,
                                   message="--face_det_batch_size must be at least 1")
    wav2lip_batch_size: int = opt(128, "frames per Wav2Lip batch (bounded by memory)", _ORIGINAL, check=_positive,
                                  message="--wav2lip_batch_size must be at least 1")
    resize_factor: int = opt(1, "divide the video resolution by this", _ORIGINAL, check=_positive,
                             message="--resize_factor must be an integer >= 1")
    crop: tuple[int, int, int, int] = opt((0, -1, 0, -1), "crop the video to this region (-1: to the edge)",
                                          _ORIGINAL, metavar=_BOX4)
    box: tuple[int, int, int, int] | None = opt(None, "fixed face box on every frame; skips detection", _ORIGINAL,
                                                metavar=_BOX4)
    rotate: bool = opt(False, "rotate the video 90 degrees clockwise", _ORIGINAL)
    nosmooth: bool = opt(False, "do not smooth face boxes over time", _ORIGINAL)
    # Ours.
    device: str = opt("auto", "auto, cpu, cuda or cuda:N", check=lambda v: v in DEVICES or _CUDA_N.fullmatch(v),
                      message="--device must be auto, cpu, cuda or cuda:N (N a GPU number: cuda:0)")
    dtype: str = opt("auto", "compute dtype (auto: float16 on CUDA; on CPU bfloat16 for the models measured safe "
                     "in it where the CPU has AMX or AVX-512 BF16, else float32; float32: exact parity; int8: CPU "
                     "only, face detectors and super-resolution quantized to int8, the rest as auto)",
                     choices=DTYPES)
    compile: bool = opt(False, "torch.compile the generator: slower start, faster frames (CUDA, long videos)")
    detector: str = opt("s3fd", "face detector", choices=lambda cat: tuple(cat.detectors))
    det_size: int = opt(DetectionSettings.det_size, "longest side of frames given to the detector; 0 = full "
                        "resolution", check=lambda v: v >= 0, message="--det_size must be >= 0 (0: full resolution)")
    det_stride: int = opt(DetectionSettings.det_stride, "detect every k-th frame and interpolate; re-detects at "
                          "cuts", check=_positive, message="--det_stride must be >= 1")
    face_point: tuple[int, int] | None = opt(None, "with several faces, follow the one nearest this point "
                                             "(default: the largest)", metavar=("X", "Y"))
    blend: str = opt("feather", "feather (no seams) or hard (the original's paste)", choices=BLENDS)
    audio_offset_ms: float = opt(0.0, "shift the audio windows relative to the video",
                                 check=lambda v: abs(v) <= 10_000, message="--audio_offset_ms must be within ±10000")
    no_track_cache: bool = opt(False, "always re-detect faces instead of reusing the cached track")
    cache_dir: str | None = opt(None, "cache folder for weights and face tracks (default: ~/.cache/lipsync)")
    silence_gate_db: float | None = opt(None, "mel windows whose audio stays below this level (dBFS RMS, e.g. -45) "
                                        "become silence, so noise in pauses does not move the mouth",
                                        check=lambda v: -120 <= v <= 0,
                                        message="--silence_gate_db is a level in dBFS between -120 and 0 (e.g. -45)")
    # Sync scoring.
    score: bool = opt(False, "score the output's lip sync (and the face video's own, when it has speech): one line, "
                      "and <output>.score.json", _SCORE)
    scorer: str = opt("syncnet", "syncnet (LSE-D/LSE-C, the published metric) or expert (Wav2Lip's lip-sync "
                      "expert)", _SCORE, choices=SCORERS)
    fix_offset: bool = opt(False, "measure the output's A/V offset and shift its audio when it is at least a frame "
                           "and LSE-C >= 3; with --audio same, the face video's own offset is fixed before syncing",
                           _SCORE)
    # 2D animation and hard faces.
    track_box: tuple[str, ...] | None = opt(None, "set the face box on a frame and follow it through the clip "
                                            "(repeat for more keyframes; no @: the first frame; coordinates as "
                                            "--box)", _HARD,
                                     metavar=("TOP BOTTOM LEFT RIGHT", "@SECONDS"), repeat=True,
                                     check=lambda v: all(parse_track_box(k.split()) for k in v))
    box_keyframes: str | None = opt(None, 'JSON file of keyframes: [{"t": seconds, "box": [top, bottom, left, '
                                    'right]}, ...] (as --track_box)', _HARD)
    mask_region: str = opt("lower", "what is pasted: lower (the lower face, as the original) or mouth (an "
                           "elliptical mouth region only, in every variant; --upscale 2 still changes every pixel)",
                           _HARD, choices=MASK_REGIONS)
    mouth_scale: float = opt(1.0, "size of the --mask_region mouth region (1: the mouth with a margin)", _HARD,
                             check=lambda v: 0 < v <= MAX_MOUTH_SCALE,
                             message=f"--mouth_scale must be in (0, {MAX_MOUTH_SCALE:g}]")
    # Output and messages.
    crf: int = opt(18, "H.264 quality, 0 = lossless", _OUTPUT, check=lambda v: 0 <= v <= 51,
                   message="--crf must be between 0 and 51")
    preset: str = opt("medium", "x264 preset", _OUTPUT)
    no_progress: bool = opt(False, "no progress bars", _OUTPUT)
    quiet: bool = opt(False, "print only the output path (and warnings and errors)", _OUTPUT)
    # Inputs.
    start: str | None = opt(None, "trim the face video from here (seconds or hh:mm:ss.ms)", _INPUTS)
    end: str | None = opt(None, "trim the face video up to here", _INPUTS)
    audio_start: str | None = opt(None, "trim the audio from here", _INPUTS)
    audio_end: str | None = opt(None, "trim the audio up to here", _INPUTS)
    cookies: str | None = opt(None, "cookies.txt for sites that ask for sign-in (YouTube)", _INPUTS)
    max_seconds: float | None = opt(None, "refuse inputs longer than this", _INPUTS, check=_positive,
                                    message="--max_seconds must be positive")
    # HQ variants.
    no_sr: bool = opt(False, "skip super-resolution (its model is not loaded)", _HQ)
    no_segmentation: bool = opt(False, "skip the segmentation mask", _HQ)
    mask_feather: int = opt(8, "mask edge width in pixels of the face box", _HQ, check=lambda v: v >= 0,
                            message="--mask_feather must be >= 0")
    mask_lower_face: float | None = opt(None, "keep the mask only in this lowest fraction of the face box", _HQ,
                                        check=lambda v: 0 < v <= 1,
                                        message="--mask_lower_face is the lowest fraction of the face box to keep, "
                                                "in (0, 1]")
    # CodeFormer variant.
    fidelity: float = opt(0.7, "0 = quality, 1 = fidelity", _CF, check=lambda v: 0.0 <= v <= 1.0,
                          message="--fidelity must be between 0 and 1")
    sharpen: float = opt(0.0, "unsharp-mask strength on the mouth; 0 = off", _CF, check=lambda v: 0 <= v <= 5,
                         message="--sharpen must be between 0 (off) and 5")
    upscale: int = opt(1, "2 doubles the output resolution (changes every pixel)", _CF, choices=(1, 2))

    @property
    def progress(self) -> bool:
        return not (self.no_progress or self.quiet)

    @property
    def keyframed(self) -> bool:
        """The face box is set by the user on keyframes and tracked (no detector runs)."""
        return bool(self.track_box) or self.box_keyframes is not None


def option_fields() -> list[Field]:
    """The RunConfig fields that are options (everything but the weights mapping)."""
    return [f for f in fields(RunConfig) if "help" in f.metadata]


def field_default(f: Field) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]


def choices_of(f: Field, catalog: Catalog) -> tuple | None:
    c = f.metadata.get("choices")
    return c(catalog) if callable(c) else c


OPTIONS = {f.name: f for f in option_fields()}


def option_names(catalog: Catalog = CATALOG) -> list[str]:
    """Every name the API and the CLI accept: options and ``<role>_path``."""
    return [*OPTIONS, *(r.option for r in catalog.roles.values())]


def preset_config(variant: str = "original", catalog: Catalog = CATALOG) -> RunConfig:
    """The variant's defaults, before any user value (what ``--help`` shows for that variant)."""
    v = catalog.variant(variant)
    return replace(RunConfig(variant=variant), **dict(v.defaults))


def make_config(variant: str | None = "original", catalog: Catalog = CATALOG, **options: Any) -> RunConfig:
    """A validated RunConfig for ``variant`` with user ``options`` (flag names; None means unset)."""
    given = {k: v for k, v in options.items() if v is not None}
    known = set(option_names(catalog))
    unknown = sorted(set(options) - known)
    if unknown:
        hints = [f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, known, 1)) else u
                 for u in unknown]
        raise LipsyncError(f"unknown option(s): {', '.join(hints)}")
    variant = given.pop("variant", None) or variant or "original"
    weights = {r.name: str(given.pop(r.option)) for r in catalog.roles.values() if r.option in given}
    cfg = replace(preset_config(variant, catalog), weights=weights, **{k: _coerce(k, v) for k, v in given.items()})
    return validate(cfg, catalog, explicit=set(given))


def _coerce(name: str, value: Any) -> Any:
    default = field_default(OPTIONS[name])
    if OPTIONS[name].metadata.get("repeat"):
        return _uses(value)
    if isinstance(value, list):
        value = tuple(value)
    if name == "box" and tuple(value) == (-1, -1, -1, -1):
        return None  # the original's "no box"
    if name in ("start", "end", "audio_start", "audio_end") and isinstance(value, (int, float)):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _uses(value: Any) -> tuple[str, ...]:
    """A repeatable option's value, one string per use. Accepted: a string (one use); a list of lists of words
    (the CLI's: one list per use); a list of strings with spaces (one per use); a list of words (one use)."""
    if isinstance(value, str):
        return (value,)
    items = list(value)
    if all(isinstance(v, (list, tuple)) for v in items):
        return tuple(" ".join(str(w) for w in v) for v in items)
    if any(isinstance(v, str) and " " in v.strip() for v in items):
        return tuple(str(v) for v in items)
    return (" ".join(str(w) for w in items),) if items else ()


def check_option(f: Field, value: Any, choices: tuple | None = None) -> None:
    """One ``opt`` field's value: finite if a float, among ``choices`` if given, then the field's own check;
    raises LipsyncError with the flag's one-line message. None (unset) passes."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise LipsyncError(f"--{f.name} must be a finite number, not {value}")
    if choices is not None and value not in choices:
        raise LipsyncError(f"--{f.name} must be one of {', '.join(str(c) for c in choices)}")
    check = f.metadata.get("check")
    if check is not None and not check(value):
        raise LipsyncError(f.metadata["message"])


def validate(cfg: RunConfig, catalog: Catalog = CATALOG, explicit: set[str] | None = None) -> RunConfig:
    """Check every option's value; raises LipsyncError naming the flag."""
    for f in option_fields():
        check_option(f, getattr(cfg, f.name), choices_of(f, catalog))
    if tuple(cfg.crop) != (0, -1, 0, -1):
        t, b, l, r = cfg.crop
        if not (t >= 0 and l >= 0 and (b == -1 or b > t) and (r == -1 or r > l)):
            raise LipsyncError("--crop needs 0 <= top < bottom and 0 <= left < right (-1: to the edge)")
    if cfg.box is not None:
        t, b, left, r = cfg.box
        if not (0 <= t < b and 0 <= left < r):
            raise LipsyncError("--box needs top < bottom and left < right, all >= 0")
        if cfg.keyframed:
            raise LipsyncError("--box fixes the face box on every frame; --track_box/--box_keyframes track it: "
                               "give one or the other")
    if cfg.mouth_scale != 1.0 and cfg.mask_region != "mouth":
        raise LipsyncError("--mouth_scale sizes the mouth region: add --mask_region mouth")
    if cfg.track_box and cfg.box_keyframes is not None:
        raise LipsyncError("give the keyframes with --track_box or with --box_keyframes, not both")
    _check_stage_options(cfg, catalog, explicit)
    return cfg


def _check_stage_options(cfg: RunConfig, catalog: Catalog, explicit: set[str] | None) -> None:
    """An option that only a stage reads is refused when the variant does not run that stage."""
    variant = catalog.variant(cfg.variant)
    for stage in catalog.stages.values():
        if stage.name in variant.stages:
            continue
        for name in stage.options:
            changed = name in explicit if explicit is not None else getattr(cfg, name) != field_default(OPTIONS[name])
            if changed and getattr(cfg, name) != field_default(OPTIONS[name]):
                owners = catalog.variants_with_stage(stage.name)
                raise LipsyncError(f"--{name} needs --variant {' or '.join(owners)} (the {stage.name} stage)")
