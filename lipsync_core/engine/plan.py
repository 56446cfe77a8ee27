"""What a run consists of, declared once: weight roles, detectors, render stages and variants as data.

:class:`Plan` is derived from a :class:`~lipsync_core.engine.options.RunConfig` and a :class:`Catalog`; it is the only
place that knows which detector and stages a run has, which weights they need, the output scale and whether
stages need landmarks. Nothing else branches on a variant's or a stage's name.

Adding a stage is one :class:`StageSpec` (and its name in the variants that run it); a role is one
:class:`Role`; a variant is one :class:`Variant`. A :class:`Catalog` can be extended without editing this
module (:meth:`Catalog.extend`), which is how tests add a stage.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..face.detectors.anime import MOUTH as ANIME_MOUTH
from ..face.types import MouthInBox
from ..support.errors import LipsyncError

if TYPE_CHECKING:
    from torch import nn

    from ..compute.runtime import Runtime
    from ..face.types import Detector
    from ..stages.base import Stage
    from ..stages.blend import MouthMask
    from ..weights.manifest import Manifest
    from .options import RunConfig


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
class BuildContext:
    """What a spec's ``build`` gets: the run's config, runtime and its models by role."""

    cfg: RunConfig
    runtime: Runtime
    model: Callable[[str], nn.Module]  # role -> the loaded, placed module
    path: Callable[[str], Path] | None = None  # role -> the fetched file (weights that are no torch module)
    detector: DetectorSpec | None = None  # the run's detector; None: the user set the box


@dataclass(frozen=True)
class DetectorSpec:
    """A face detector: its weight role (None: no download) and how to build it."""

    name: str
    help: str
    build: Callable[[BuildContext], Detector]
    role: str | None = None
    landmarks: bool = False  # its track carries 5-point landmarks
    mouth: MouthInBox = MouthInBox()  # where its boxes hold the mouth (the mouth-only mask without landmarks)


def _always(cfg: RunConfig) -> bool:
    return True


def _one(cfg: RunConfig) -> int:
    return 1


@dataclass(frozen=True)
class StageSpec:
    """One render stage: the roles it loads, when it is on, how it is built, and what it does to the output."""

    name: str
    build: Callable[[BuildContext], Stage]
    roles: tuple[str, ...] = ()
    enabled: Callable[[RunConfig], bool] = _always
    scale: Callable[[RunConfig], int] = _one  # output size factor
    needs_landmarks: bool = False  # a track without landmarks gets them from its boxes
    options: tuple[str, ...] = ()  # RunConfig options that only this stage reads
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
        det = self.detectors[v.defaults.get("detector", "s3fd")]
        roles = list(dict.fromkeys(r for name in v.stages for r in self.stages[name].roles))
        roles += [det.role] if det.role else []
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

    def variants_with_stage(self, stage: str) -> list[str]:
        return [v.name for v in self.variants.values() if stage in v.stages]


#: The sync scorers (``--scorer``); each is also the name of its weight role.
SCORERS = ("syncnet", "expert")


# -- the plan --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """The detector and ordered active stages of one run, and everything derived from them."""

    cfg: RunConfig
    catalog: Catalog
    detector: DetectorSpec | None  # None: a fixed --box or keyframed --track_box, nothing is detected
    stages: tuple[StageSpec, ...]

    @classmethod
    def from_config(cls, cfg: RunConfig, catalog: Catalog | None = None) -> Plan:
        catalog = catalog or CATALOG
        variant = catalog.variant(cfg.variant)
        detector = None if cfg.box is not None or cfg.keyframed else catalog.detectors[cfg.detector]
        stages = tuple(s for s in (catalog.stages[name] for name in variant.stages) if s.enabled(cfg))
        return cls(cfg=cfg, catalog=catalog, detector=detector, stages=stages)

    @property
    def roles(self) -> list[str]:
        """The weight roles this run loads, detector first (nothing it skips is downloaded)."""
        roles = [self.detector.role] if self.detector is not None and self.detector.role else []
        for stage in self.stages:
            roles += [r for r in stage.roles if r not in roles]
        scoring = ([self.cfg.scorer] if self.cfg.score else []) + (["syncnet"] if self.cfg.fix_offset else [])
        return roles + [r for r in dict.fromkeys(scoring) if r not in roles]

    @property
    def scale(self) -> int:
        """Output size over input size."""
        s = 1
        for stage in self.stages:
            s *= stage.scale(self.cfg)
        return s

    @property
    def needs_landmarks(self) -> bool:
        return any(s.needs_landmarks for s in self.stages)

    @property
    def cpu_frames(self) -> int | None:
        """The smallest per-stage cap on CPU render-batch frames, if any stage sets one."""
        caps = [s.cpu_frames for s in self.stages if s.cpu_frames]
        return min(caps) if caps else None

    def weight_id(self, role: str) -> str:
        return self.catalog.weight_id(self.cfg.variant, role)

    def source(self, role: str) -> str | None:
        """The user's source for ``role`` (path, URL, Drive ID or manifest id), or None for the variant's."""
        return self.cfg.weights.get(role)

    def resolve_weight_id(self, role: str, manifest: Manifest) -> str:
        """The manifest entry for ``role``: the one its ``--<role>_path`` names by id, else the variant's."""
        default = self.weight_id(role)
        given = self.source(role)
        if given not in manifest.weights or Path(given).exists():
            return default
        arch = manifest.entry(default).arch
        if manifest.entry(given).arch != arch:
            fits = sorted(w for w, e in manifest.weights.items() if e.arch == arch)
            raise LipsyncError(f"{self.catalog.roles[role].flag} {given} names weights of another kind; use one of "
                               f"{', '.join(fits)}, a file, a URL or a Drive ID")
        return given


# -- what this package ships -----------------------------------------------------------------------------------------
def _s3fd(ctx: BuildContext) -> Detector:
    from ..face.detectors.s3fd import S3FDDetector

    return S3FDDetector(ctx.runtime.handle(ctx.model("s3fd")), batch_size=ctx.cfg.face_det_batch_size)


def _retinaface(ctx: BuildContext) -> Detector:
    from ..face.detectors.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(ctx.runtime.handle(ctx.model("retinaface")), batch_size=ctx.cfg.face_det_batch_size)


def _haar(ctx: BuildContext) -> Detector:
    from ..face.detectors.haar import HaarDetector

    return HaarDetector()


def _anime(ctx: BuildContext) -> Detector:
    from ..face.detectors.anime import AnimeFaceDetector

    assert ctx.path is not None
    return AnimeFaceDetector(ctx.path("anime"))


def _sync(ctx: BuildContext) -> Stage:
    from ..stages.sync import SyncStage

    return SyncStage(ctx.runtime.handle(ctx.model("checkpoint"), compile=ctx.cfg.compile),
                     batch_size=ctx.cfg.wav2lip_batch_size)


def _sr(ctx: BuildContext) -> Stage:
    from ..stages.hq import SuperResolution

    return SuperResolution(ctx.runtime.handle(ctx.model("sr")))


def _segmentation(ctx: BuildContext) -> Stage:
    from ..stages.hq import SegmentationMask

    return SegmentationMask(ctx.runtime.handle(ctx.model("segmentation")), feather_px=ctx.cfg.mask_feather,
                            lower_face=ctx.cfg.mask_lower_face)


def _mouth(ctx: BuildContext) -> MouthMask:
    """The mouth region of this run (also restoration's and sharpening's): the detector's placement and
    landmarks; a box the user set gets the default placement (its landmarks, if any, are made up from it)."""
    from ..stages.blend import MouthMask

    det = ctx.detector
    return MouthMask(placement=det.mouth if det is not None else MouthInBox(), scale=ctx.cfg.mouth_scale,
                     hard=ctx.cfg.blend == "hard", use_landmarks=det is not None and det.landmarks)


def _blend(ctx: BuildContext) -> Stage:
    from ..stages.blend import BlendStage

    return BlendStage(ctx.cfg.blend, hard_masked=ctx.cfg.mask_region == "mouth")


def _upscale(ctx: BuildContext) -> Stage:
    from ..stages.upscale import UpscaleStage

    return UpscaleStage(ctx.runtime.handle(ctx.model("upscaler")))


def _codeformer(ctx: BuildContext) -> Stage:
    from ..stages.restore import CodeFormerRestore

    mouth = _mouth(ctx) if ctx.cfg.mask_region == "mouth" else None
    return CodeFormerRestore(ctx.runtime.handle(ctx.model("codeformer")), ctx.runtime.handle(ctx.model("parsenet")),
                             fidelity=ctx.cfg.fidelity, mouth=mouth)


def _sharpen(ctx: BuildContext) -> Stage:
    from ..stages.restore import Sharpen

    mouth = _mouth(ctx)
    return Sharpen(ctx.cfg.sharpen, mouth=mouth if ctx.cfg.mask_region == "mouth" else replace(mouth, scale=1.0))


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
        StageSpec("sr", _sr, roles=("sr",), enabled=lambda c: not c.no_sr, options=("no_sr",), cpu_frames=4),
        StageSpec("segmentation", _segmentation, roles=("segmentation",), enabled=lambda c: not c.no_segmentation,
                  options=("no_segmentation", "mask_feather", "mask_lower_face")),
        StageSpec("mouth", _mouth, enabled=lambda c: c.mask_region == "mouth"),
        StageSpec("blend", _blend),
        StageSpec("upscale", _upscale, roles=("upscaler",), enabled=lambda c: c.upscale == 2,
                  scale=lambda c: c.upscale, options=("upscale",), cpu_frames=4),
        StageSpec("codeformer", _codeformer, roles=("codeformer", "parsenet"), needs_landmarks=True,
                  options=("fidelity",), cpu_frames=1),
        StageSpec("sharpen", _sharpen, enabled=lambda c: c.sharpen > 0, options=("sharpen",)),
    ]),
    variants=_table([
        Variant("original", "the original method: fastest, best sync, a softer mouth", ("sync", "mouth", "blend"),
                defaults={"detector": "s3fd"}),
        Variant("hq", "Wav2Lip-HQ: ESRGAN x4 of the face and a BiSeNet mask, non-GAN generator",
                ("sync", "sr", "segmentation", "mouth", "blend"), defaults={"detector": "s3fd"}),
        Variant("hq_gan", "Wav2Lip-HQ with the GAN generator", ("sync", "sr", "segmentation", "mouth", "blend"),
                weights={"checkpoint": "wav2lip_gan"}, defaults={"detector": "s3fd"}),
        Variant("codeformer", "CodeFormer restoration of the synced face (fidelity, sharpening, x2 upscale)",
                ("sync", "mouth", "blend", "upscale", "codeformer", "sharpen"), weights={"checkpoint": "wav2lip_gan"},
                defaults={"detector": "retinaface"}),
    ]),
)
