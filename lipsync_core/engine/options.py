"""The options of a run, grouped by the pass that reads them, with the flat view every front end uses.

:class:`RunOptions` is made of small frozen groups: ``inputs`` (trims, limits), ``video`` (how the face video is
opened), ``detection`` (pass 1, :class:`~lipsync_core.face.track.DetectionOptions`), ``render`` (pass 2 and its
stages), ``output``, ``compute`` (device, dtype, caches) and ``scoring``. A pass takes its own group; only the
job sees them all. Every field is an option made by :func:`~lipsync_core.support.options.opt`, named as its CLI
flag; the flat view (``options.det_stride``, :meth:`RunOptions.flat`, :meth:`RunOptions.replace`, :data:`OPTIONS`)
is what the CLI, the API keywords, batch rows and notebook forms use, so every name is the flag's.

Resolution and validation against the catalog (presets, choices, stage options) are in :mod:`.plan`.
"""
from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from dataclasses import replace as _replace
from typing import Any

from ..cues import RECOGNIZERS
from ..face.track import DetectionOptions
from ..stages.masks import MAX_MOUTH_SCALE
from ..support.options import is_option, opt

# What Runtime.resolve accepts (kept here, beside the options, so reading the options never imports torch).
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16", "int8")
BLENDS = ("feather", "hard")
MASK_REGIONS = ("lower", "mouth")
#: The sync scorers (``--scorer``); each is also the name of its weight role.
SCORERS = ("syncnet", "expert")

_INPUTS = "inputs (trims apply to the face video; audio_* to the audio)"
_ORIGINAL = "the original inference.py options"
_HQ = "HQ variants"
_CF = "CodeFormer variant"
_OUTPUT = "output and messages"
_SCORE = "sync scoring (LSE-D / LSE-C, A/V offset)"
_HARD = "2D animation and hard faces"
_BOX4 = ("TOP", "BOTTOM", "LEFT", "RIGHT")
_CHART = "chart variant (2D re-dub with the character's own mouth drawings)"
_OURS = "this package's options"

_CUDA_N = re.compile(r"cuda:\d{1,3}")


def _positive(v: float) -> bool:
    return v > 0


def _mouth_boxes(uses: tuple[str, ...]) -> bool:
    from ..face.boxtrack import parse_track_box

    return all(parse_track_box(k.split(), "--mouth_box") for k in uses)


@dataclass(frozen=True)
class InputOptions:
    """Where the inputs come from and which part of them is used (read by the job's input resolution)."""

    start: str | None = opt(None, "trim the face video from here (seconds or hh:mm:ss.ms)", _INPUTS)
    end: str | None = opt(None, "trim the face video up to here", _INPUTS)
    audio_start: str | None = opt(None, "trim the audio from here", _INPUTS)
    audio_end: str | None = opt(None, "trim the audio up to here", _INPUTS)
    max_seconds: float | None = opt(None, "refuse inputs longer than this", _INPUTS, check=_positive,
                                    message="--max_seconds must be positive")


@dataclass(frozen=True)
class VideoOptions:
    """How the face video is opened (read by the session's :meth:`~lipsync_core.engine.session.Session.open_video`):
    they change the frames both passes see."""

    static: bool = opt(False, "use only the first frame of the video", _ORIGINAL)
    fps: float = opt(25.0, "frame rate for still images (videos keep their own)", _ORIGINAL,
                     check=lambda v: 1 <= v <= 240,  # below 1 fps one frame outlasts the audio by up to seconds
                     message="--fps must be between 1 and 240 (frames per second of a still image's video)")
    resize_factor: int = opt(1, "divide the video resolution by this", _ORIGINAL, check=_positive,
                             message="--resize_factor must be an integer >= 1")
    crop: tuple[int, int, int, int] = opt((0, -1, 0, -1), "crop the video to this region (-1: to the edge)",
                                          _ORIGINAL, metavar=_BOX4)
    rotate: bool = opt(False, "rotate the video 90 degrees clockwise", _ORIGINAL)


@dataclass(frozen=True)
class RenderOptions:
    """Pass 2: the generator, the audio windows, the paste, and the options of the optional stages (each stage
    declares which of them it alone reads, so they are refused for a variant without it)."""

    wav2lip_batch_size: int = opt(128, "frames per Wav2Lip batch (bounded by memory)", _ORIGINAL, check=_positive,
                                  message="--wav2lip_batch_size must be at least 1")
    compile: bool = opt(False, "torch.compile the generator: slower start, faster frames (CUDA, long videos)", _OURS)
    blend: str = opt("feather", "feather (no seams) or hard (the original's paste)", _OURS, choices=BLENDS)
    audio_offset_ms: float = opt(0.0, "shift the audio windows relative to the video", _OURS,
                                 check=lambda v: abs(v) <= 10_000, message="--audio_offset_ms must be within ±10000")
    silence_gate_db: float | None = opt(None, "mel windows whose audio stays below this level (dBFS RMS, e.g. -45) "
                                        "become silence, so noise in pauses does not move the mouth", _OURS,
                                        check=lambda v: -120 <= v <= 0,
                                        message="--silence_gate_db is a level in dBFS between -120 and 0 (e.g. -45)")
    mask_region: str = opt("lower", "what is pasted: lower (the lower face, as the original) or mouth (an "
                           "elliptical mouth region only, in every variant; --upscale 2 still changes every pixel)",
                           _HARD, choices=MASK_REGIONS)
    mouth_scale: float = opt(1.0, "size of the --mask_region mouth region (1: the mouth with a margin)", _HARD,
                             check=lambda v: 0 < v <= MAX_MOUTH_SCALE,
                             message=f"--mouth_scale must be in (0, {MAX_MOUTH_SCALE:g}]")
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
    # Chart variant.
    mouth_box: tuple[str, ...] | None = opt(None, "the mouth box on a frame (no @: the first), followed through the "
                                            "clip with the face track, else by the area around it; repeat for more "
                                            "keyframes", _CHART, metavar="BOX", repeat=True, check=_mouth_boxes)
    mouth_chart: str = opt("auto", "a folder of mouth drawings named by shape (A.png ... H.png, X.png), or auto: "
                           "the distinct drawings the clip itself shows", _CHART)
    hold_frames: int = opt(1, "animate on ones, twos or threes (a drawing is held this many frames)", _CHART,
                           choices=(1, 2, 3))
    dialog_file: str | None = opt(None, "the transcript (plain text): its words are aligned to the speech, far more "
                                  "accurate than recognition", _CHART)
    recognizer: str = opt("pocketsphinx", "pocketsphinx (English words) or phonetic (phones only, any language)",
                          _CHART, choices=RECOGNIZERS)
    extended_shapes: str = opt("GHX", "the extended mouth shapes to use, any of G, H, X ('' for none)", _CHART,
                               check=lambda v: set(v.upper()) <= set("GHX"),
                               message="--extended_shapes is some of G, H, X (e.g. GHX, or '' for none)")


@dataclass(frozen=True)
class OutputOptions:
    """The encoded output."""

    crf: int = opt(18, "H.264 quality, 0 = lossless", _OUTPUT, check=lambda v: 0 <= v <= 51,
                   message="--crf must be between 0 and 51")
    preset: str = opt("medium", "x264 preset", _OUTPUT)


@dataclass(frozen=True)
class MessageOptions:
    """What a run prints while it works."""

    no_progress: bool = opt(False, "no progress bars", _OUTPUT)
    quiet: bool = opt(False, "print only the output path (and warnings and errors)", _OUTPUT)

    @property
    def progress(self) -> bool:
        return not (self.no_progress or self.quiet)


@dataclass(frozen=True)
class ComputeOptions:
    """Where models compute (read by the session)."""

    device: str = opt("auto", "auto, cpu, cuda or cuda:N", _OURS,
                      check=lambda v: v in DEVICES or _CUDA_N.fullmatch(v),
                      message="--device must be auto, cpu, cuda or cuda:N (N a GPU number: cuda:0)")
    dtype: str = opt("auto", "compute dtype (auto: float16 on CUDA; on CPU bfloat16 for the models measured safe "
                     "in it where the CPU has AMX or AVX-512 BF16, else float32; float32: exact parity; int8: CPU "
                     "only, face detectors and super-resolution quantized to int8, the rest as auto)", _OURS,
                     choices=DTYPES)


@dataclass(frozen=True)
class FetchOptions:
    """Where weights and face tracks are cached, and how downloads sign in."""

    cache_dir: str | None = opt(None, "cache folder for weights and face tracks (default: ~/.cache/lipsync)", _OURS)
    cookies: str | None = opt(None, "cookies.txt for sites that ask for sign-in (YouTube)", _INPUTS)


@dataclass(frozen=True)
class ScoreOptions:
    """What the job does after rendering: scoring and the A/V offset fix."""

    score: bool = opt(False, "score the output's lip sync (and the face video's own, when it has speech): one line, "
                      "and <output>.score.json", _SCORE)
    scorer: str = opt("syncnet", "syncnet (LSE-D/LSE-C, the published metric) or expert (Wav2Lip's lip-sync "
                      "expert)", _SCORE, choices=SCORERS)
    fix_offset: bool = opt(False, "measure the output's A/V offset and shift its audio when it is at least a frame "
                           "and LSE-C >= 3; with --audio same, the face video's own offset is fixed before syncing",
                           _SCORE)


#: The groups of :class:`RunOptions`, by attribute name, in the order the CLI's ``--help`` lists them.
GROUPS: dict[str, type] = {"video": VideoOptions, "detection": DetectionOptions, "render": RenderOptions,
                           "compute": ComputeOptions, "fetch": FetchOptions, "scoring": ScoreOptions,
                           "output": OutputOptions, "messages": MessageOptions, "inputs": InputOptions}


def _fields_by_name() -> dict[str, tuple[str, Field]]:
    out: dict[str, tuple[str, Field]] = {}
    for group, cls in GROUPS.items():
        for f in fields(cls):
            if is_option(f):
                assert f.name not in out, f"option {f.name} is in two groups"
                out[f.name] = (group, f)
    return out


#: flag name -> (group, field): the flat view's index.
_FLAT = _fields_by_name()


@dataclass(frozen=True)
class RunOptions:
    """Every setting of a run: the variant, the weights by role, and the option groups. Read a group
    (``options.render``) in code that runs a pass; the flat names (``options.det_stride``) are the front ends'."""

    variant: str = opt("original", "what runs after Wav2Lip", "variant", choices=lambda cat: tuple(cat.variants))
    # role -> source (path, URL, Drive ID/link or manifest id); absent: the variant's manifest default.
    weights: Mapping[str, str] = field(default_factory=dict)
    video: VideoOptions = field(default_factory=VideoOptions)
    detection: DetectionOptions = field(default_factory=DetectionOptions)
    render: RenderOptions = field(default_factory=RenderOptions)
    compute: ComputeOptions = field(default_factory=ComputeOptions)
    fetch: FetchOptions = field(default_factory=FetchOptions)
    scoring: ScoreOptions = field(default_factory=ScoreOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    messages: MessageOptions = field(default_factory=MessageOptions)
    inputs: InputOptions = field(default_factory=InputOptions)

    def __getattr__(self, name: str) -> Any:
        """The flat view: ``options.det_stride`` is ``options.detection.det_stride``."""
        try:
            group, _ = _FLAT[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no option {name!r}") from None
        return getattr(object.__getattribute__(self, group), name)

    def replace(self, **flat: Any) -> RunOptions:
        """These options with some changed, by flag name (``variant`` and ``weights`` too)."""
        top = {k: flat.pop(k) for k in ("variant", "weights") if k in flat}
        per_group: dict[str, dict[str, Any]] = {}
        for name, value in flat.items():
            try:
                group, _ = _FLAT[name]
            except KeyError:
                raise TypeError(f"no option {name!r}") from None
            per_group.setdefault(group, {})[name] = value
        return _replace(self, **top, **{g: _replace(getattr(self, g), **v) for g, v in per_group.items()})

    def flat(self) -> dict[str, Any]:
        """``{flag name: value}`` for every option (``variant`` included, ``weights`` not)."""
        return {"variant": self.variant, **{name: getattr(self, name) for name in _FLAT}}

    @property
    def progress(self) -> bool:
        return self.messages.progress

    @property
    def keyframed(self) -> bool:
        return self.detection.keyframed


def option_fields() -> list[Field]:
    """Every option field, flat: ``variant`` then each group's, in :data:`GROUPS` order."""
    return [next(f for f in fields(RunOptions) if f.name == "variant"), *(f for _, f in _FLAT.values())]


#: flag name -> its option field.
OPTIONS: dict[str, Field] = {f.name: f for f in option_fields()}


def group_options(*groups: str) -> tuple[str, ...]:
    """The flag names of the option ``groups`` (e.g. a subcommand's share of the run flags)."""
    return tuple(name for name, (g, _) in _FLAT.items() if g in groups)


def tracking_options() -> tuple[str, ...]:
    """The run flags of a command that only tracks faces (``lipsync score``, ``lipsync train prepare``): the
    detection options its raw track reads, device, caches and messages."""
    finishing = set(DetectionOptions.FINISHING)
    return tuple(n for n in group_options("detection", "compute", "fetch", "messages") if n not in finishing)


def option_hints() -> dict[str, Any]:
    """flag name -> its type annotation, evaluated (``int``, ``tuple[int, int] | None``, ...)."""
    hints: dict[str, Any] = {"variant": str}
    for cls in GROUPS.values():
        hints.update({k: v for k, v in typing.get_type_hints(cls).items() if k in _FLAT})
    return hints
