"""What the package knows, declared once: weight roles, detectors, render stages and variants as data.

A :class:`Catalog` is read by :class:`~lipsync_core.engine.plan.Plan` (what one run consists of); nothing else
branches on a variant's or a stage's name. Adding a stage is one :class:`StageSpec` (and its name in the variants
that run it); a role is one :class:`Role`; a variant is one :class:`Variant`; a detector one
:class:`DetectorSpec`. A catalog can be extended without editing this module (:meth:`Catalog.extend`), which is
how tests add a stage.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..face.detectors.anime import MOUTH as ANIME_MOUTH
from ..face.track import DEFAULT_DETECTOR, DetectionOptions
from ..face.types import MouthInBox
from ..support.errors import LipsyncError
from .options import RenderOptions

if TYPE_CHECKING:
    from ..compute.handle import ModelHandle
    from ..face.types import Detector, FaceTrack
    from ..media.face_video import FaceVideo
    from ..stages.base import Stage
    from ..stages.blend import MouthMask
    from ..weights.manifest import Manifest


# -- weight roles ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Role:
    """What a weight file does in a run; the CLI flag is ``--<name>_path``. The arch it loads is its manifest
    entry's."""

    name: str
    help: str
    default: str  # manifest weight id used when the variant names none

    @property
    def flag(self) -> str:
        return f"--{self.name}_path"

    @property
    def option(self) -> str:
        """The option name (CLI flag without dashes, API keyword)."""
        return f"{self.name}_path"


# -- detectors and stages --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderInputs:
    """What the render pass renders, for stages that read it when built (the chart stage's cues and mouth chart):
    the driving speech, the output frame rate, the face video and its track."""

    speech: Path
    fps: float
    video: FaceVideo
    track: FaceTrack


@dataclass(frozen=True)
class BuildContext:
    """What a spec's ``build`` gets: the options it may read and the run's models, ready, by role."""

    render: RenderOptions
    detection: DetectionOptions
    handle: Callable[..., ModelHandle]  # (role, compile=False) -> the ready model
    path: Callable[[str], Path] | None = None  # role -> the fetched file (weights that are no torch module)
    detector: DetectorSpec | None = None  # the run's detector; None: the user set the box
    inputs: RenderInputs | None = None  # the render pass's speech, video and track (None outside it)


@dataclass(frozen=True)
class DetectorSpec:
    """A face detector: its weight role (None: no download) and how to build it."""

    name: str
    help: str
    build: Callable[[BuildContext], Detector]
    role: str | None = None
    landmarks: bool = False  # its track carries 5-point landmarks
    mouth: MouthInBox = MouthInBox()  # where its boxes hold the mouth (the mouth-only mask without landmarks)


def _always(render: RenderOptions) -> bool:
    return True


def _one(render: RenderOptions) -> int:
    return 1


@dataclass(frozen=True)
class StageSpec:
    """One render stage: the roles it loads, when it is on, how it is built, and what it does to the output."""

    name: str
    build: Callable[[BuildContext], Stage]
    roles: tuple[str, ...] = ()
    enabled: Callable[[RenderOptions], bool] = _always
    scale: Callable[[RenderOptions], int] = _one  # output size factor
    needs_landmarks: bool = False  # a track without landmarks gets them from its boxes
    options: tuple[str, ...] = ()  # the render options that only this stage reads
    cpu_frames: int | None = None  # frames per render batch on CPU for slow stages (the bar moves every few s)


@dataclass(frozen=True)
class Variant:
    """A named preset: the stages it runs (in order), weights other than the roles' defaults, option defaults."""

    name: str
    help: str
    stages: tuple[str, ...]
    weights: Mapping[str, str] = field(default_factory=dict)  # role -> manifest weight id
    defaults: Mapping[str, Any] = field(default_factory=dict)  # option -> preset value (e.g. detector)


def _table(items: Iterable[Any]) -> Mapping[str, Any]:
    return MappingProxyType({item.name: item for item in items})


@dataclass(frozen=True)
class Catalog:
    """Every role, detector, stage and variant the package knows."""

    roles: Mapping[str, Role]
    detectors: Mapping[str, DetectorSpec]
    stages: Mapping[str, StageSpec]
    variants: Mapping[str, Variant]

    def extend(self, *, roles: Iterable[Role] = (), detectors: Iterable[DetectorSpec] = (),
               stages: Iterable[StageSpec] = (), variants: Iterable[Variant] = ()) -> Catalog:
        """A catalog with these entries added (or replaced by name)."""
        return replace(self, roles=_table([*self.roles.values(), *roles]),
                       detectors=_table([*self.detectors.values(), *detectors]),
                       stages=_table([*self.stages.values(), *stages]),
                       variants=_table([*self.variants.values(), *variants]))

    def variant(self, name: str) -> Variant:
        try:
            return self.variants[name]
        except KeyError:
            raise LipsyncError(f"unknown variant {name!r}; choose one of {', '.join(self.variants)}") from None

    def weight_id(self, variant: str, role: str) -> str:
        """The manifest weight a variant uses for ``role``."""
        return self.variant(variant).weights.get(role) or self.roles[role].default

    def variant_weights(self, variant: str) -> dict[str, str]:
        """``{role: weight id}`` for every role the variant can use (its default detector's, every stage's)."""
        v = self.variant(variant)
        name = v.defaults.get("detector", DEFAULT_DETECTOR)  # None: the variant detects nothing unless asked
        roles = list(dict.fromkeys(r for stage in v.stages for r in self.stages[stage].roles))
        roles += [r for r in [self.detectors[name].role if name else None] if r]
        return {r: self.weight_id(variant, r) for r in roles}

    def other_detector_weights(self, variant: str) -> dict[str, str]:
        """``{role: weight id}`` of the detectors other than the variant's default (used only when chosen)."""
        own = self.variant_weights(variant)
        return {d.role: self.weight_id(variant, d.role) for d in self.detectors.values()
                if d.role and d.role not in own}

    def flag_for_arch(self, arch: str, manifest: Manifest) -> str:
        """Where a checkpoint of ``arch`` belongs, for messages: "pass it to --<role>_path" or ""."""
        for role in self.roles.values():
            if role.default in manifest.weights and manifest.entry(role.default).arch == arch:
                return f"pass it to {role.flag}"
        return "no lipsync_core variant uses it"

    @property
    def detector_roles(self) -> tuple[str, ...]:
        """The weight roles of the detectors that need a file."""
        return tuple(d.role for d in self.detectors.values() if d.role)

    def variants_with_stage(self, stage: str) -> list[str]:
        return [v.name for v in self.variants.values() if stage in v.stages]


# -- what this package ships -----------------------------------------------------------------------------------------
def _s3fd(ctx: BuildContext) -> Detector:
    from ..face.detectors.s3fd import S3FDDetector

    return S3FDDetector(ctx.handle("s3fd"), batch_size=ctx.detection.face_det_batch_size)


def _retinaface(ctx: BuildContext) -> Detector:
    from ..face.detectors.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(ctx.handle("retinaface"), batch_size=ctx.detection.face_det_batch_size)


def _haar(ctx: BuildContext) -> Detector:
    from ..face.detectors.haar import HaarDetector

    return HaarDetector()


def _anime(ctx: BuildContext) -> Detector:
    from ..face.detectors.anime import AnimeFaceDetector

    assert ctx.path is not None
    return AnimeFaceDetector(ctx.path("anime"))


def _sync(ctx: BuildContext) -> Stage:
    from ..stages.sync import SyncStage

    return SyncStage(ctx.handle("checkpoint", compile=ctx.render.compile), batch_size=ctx.render.wav2lip_batch_size)


def _sr(ctx: BuildContext) -> Stage:
    from ..stages.hq import SuperResolution

    return SuperResolution(ctx.handle("sr"))


def _segmentation(ctx: BuildContext) -> Stage:
    from ..stages.hq import SegmentationMask

    return SegmentationMask(ctx.handle("segmentation"), feather_px=ctx.render.mask_feather,
                            lower_face=ctx.render.mask_lower_face)


def _mouth(ctx: BuildContext) -> MouthMask:
    """The mouth region of this run (also restoration's and sharpening's): the detector's placement and
    landmarks; a box the user set gets the default placement (its landmarks, if any, are made up from it)."""
    from ..stages.blend import MouthMask

    det = ctx.detector
    return MouthMask(placement=det.mouth if det is not None else MouthInBox(), scale=ctx.render.mouth_scale,
                     hard=ctx.render.blend == "hard", use_landmarks=det is not None and det.landmarks)


def _blend(ctx: BuildContext) -> Stage:
    from ..stages.blend import BlendStage

    return BlendStage(ctx.render.blend, hard_masked=ctx.render.mask_region == "mouth")


def _upscale(ctx: BuildContext) -> Stage:
    from ..stages.upscale import UpscaleStage

    return UpscaleStage(ctx.handle("upscaler"))


def _codeformer(ctx: BuildContext) -> Stage:
    from ..stages.restore import CodeFormerRestore

    mouth = _mouth(ctx) if ctx.render.mask_region == "mouth" else None
    return CodeFormerRestore(ctx.handle("codeformer"), ctx.handle("parsenet"), fidelity=ctx.render.fidelity,
                             mouth=mouth)


def _sharpen(ctx: BuildContext) -> Stage:
    from ..stages.restore import Sharpen

    mouth = _mouth(ctx)
    return Sharpen(ctx.render.sharpen, mouth=mouth if ctx.render.mask_region == "mouth" else replace(mouth, scale=1.0))


def _chart(ctx: BuildContext) -> Stage:
    """The chart stage: the mouth followed (with the face track, else by the area around it), the chart (a
    folder's or the clip's own), and the cues of the speech, made once."""
    from ..cues import idle_shape, mouth_cues, read_dialog
    from ..cues.formats import CueFile, to_json
    from ..stages.chart import ChartStage
    from .chart import chart_for, follows_face, started

    src = ctx.inputs
    assert src is not None, "the chart stage is built by the render pass"
    r = ctx.render
    placement = ctx.detector.mouth if ctx.detector is not None else MouthInBox()
    dialog = read_dialog(r.dialog_file)
    cues_of = started(mouth_cues, src.speech, dialog, extended_shapes=r.extended_shapes, recognizer=r.recognizer)
    track, chart = chart_for(src.video, src.track, r, follows_face=follows_face(ctx.detection, ctx.detector),
                             placement=placement)
    cues = cues_of()
    idle = idle_shape(r.extended_shapes)
    info = CueFile(sound_file=str(Path(src.speech).resolve()), duration=cues[-1].end if cues else 0.0, idle=idle,
                   recognizer=r.recognizer, dialog=dialog is not None)
    return ChartStage(chart, track, [(c.start, c.end, c.value) for c in cues], src.fps, hold_frames=r.hold_frames,
                      idle=idle, sidecars={".cues.json": to_json(cues, info)})


#: The render options only the chart stage reads.
CHART_OPTIONS = ("mouth_box", "mouth_chart", "hold_frames", "dialog_file", "recognizer", "extended_shapes")

CATALOG = Catalog(
    roles=_table([
        Role("checkpoint", "Wav2Lip generator (wav2lip.pth, wav2lip_gan.pth or a fine-tuned one)", "wav2lip"),
        Role("s3fd", "S3FD face detector", "s3fd"),
        Role("retinaface", "RetinaFace face detector", "retinaface_resnet50"),
        Role("sr", "ESRGAN x4 super-resolution of the face (HQ)", "esrgan_yunying"),
        Role("segmentation", "BiSeNet face segmentation (HQ)", "face_segmentation"),
        Role("codeformer", "CodeFormer face restoration", "codeformer"),
        Role("parsenet", "ParseNet face parsing (CodeFormer's paste mask)", "parsenet"),
        Role("upscaler", "RealESRGAN x2 background upscaler (--upscale 2)", "realesrgan_x2"),
        Role("syncnet", "SyncNet v2, the LSE-D/LSE-C sync scorer (--score, --fix_offset, lipsync score)", "syncnet_v2"),
        Role("expert", "Wav2Lip's lip-sync expert (--scorer expert)", "lipsync_expert"),
        Role("anime", "OpenCV LBP anime-face cascade (--detector anime)", "anime_face_cascade"),
    ]),
    detectors=_table([
        DetectorSpec("s3fd", "S3FD, as the original (photographs)", _s3fd, role="s3fd"),
        DetectorSpec("haar", "OpenCV's Haar cascade: no download, frontal faces", _haar),
        DetectorSpec("retinaface", "RetinaFace ResNet-50, with 5-point landmarks", _retinaface, role="retinaface",
                     landmarks=True),
        DetectorSpec("anime", "OpenCV's anime-face cascade: drawn anime/manga faces", _anime, role="anime",
                     mouth=ANIME_MOUTH),
    ]),
    stages=_table([
        StageSpec("sync", _sync, roles=("checkpoint",)),
        StageSpec("sr", _sr, roles=("sr",), enabled=lambda r: not r.no_sr, options=("no_sr",), cpu_frames=4),
        StageSpec("segmentation", _segmentation, roles=("segmentation",), enabled=lambda r: not r.no_segmentation,
                  options=("no_segmentation", "mask_feather", "mask_lower_face")),
        StageSpec("mouth", _mouth, enabled=lambda r: r.mask_region == "mouth"),
        StageSpec("blend", _blend),
        StageSpec("upscale", _upscale, roles=("upscaler",), enabled=lambda r: r.upscale == 2,
                  scale=lambda r: r.upscale, options=("upscale",), cpu_frames=4),
        StageSpec("codeformer", _codeformer, roles=("codeformer", "parsenet"), needs_landmarks=True,
                  options=("fidelity",), cpu_frames=1),
        StageSpec("sharpen", _sharpen, enabled=lambda r: r.sharpen > 0, options=("sharpen",)),
        StageSpec("chart", _chart, options=CHART_OPTIONS),
    ]),
    variants=_table([
        Variant("original", "the original method: fastest, best sync, a softer mouth", ("sync", "mouth", "blend")),
        Variant("hq", "Wav2Lip-HQ: ESRGAN x4 of the face and a BiSeNet mask, non-GAN generator",
                ("sync", "sr", "segmentation", "mouth", "blend")),
        Variant("hq_gan", "Wav2Lip-HQ with the GAN generator", ("sync", "sr", "segmentation", "mouth", "blend"),
                weights={"checkpoint": "wav2lip_gan"}),
        Variant("codeformer", "CodeFormer restoration of the synced face (fidelity, sharpening, x2 upscale)",
                ("sync", "mouth", "blend", "upscale", "codeformer", "sharpen"), weights={"checkpoint": "wav2lip_gan"},
                defaults={"detector": "retinaface"}),
        Variant("chart", "2D re-dub with the character's own mouth drawings (no Wav2Lip): the mouth followed from "
                "--mouth_box (with --detector anime or --track_box when given), a drawing per mouth cue",
                ("chart",), defaults={"detector": None}),
    ]),
)
