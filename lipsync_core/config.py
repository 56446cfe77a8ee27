"""Run configuration: one flat dataclass whose field names are the CLI flags, and the variant presets.

A variant is a preset over :class:`RunConfig` (which weights fill which role, which detector, which
enhancement stages); the pipeline is the same for all of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import LipsyncError
from .face.track import DetectionSettings

Box = tuple[int, int, int, int]

VARIANTS = ("original", "hq", "hq_gan", "codeformer")
DETECTORS = ("s3fd", "haar", "retinaface")
BLENDS = ("feather", "hard")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class RunConfig:
    """Every setting of a run. Field names equal the CLI flags (``--wav2lip_batch_size`` etc.)."""

    variant: str = "original"
    # Weights: a local path, URL, Drive ID or share link; None = the variant's manifest default.
    checkpoint_path: str | None = None
    s3fd_path: str | None = None
    sr_path: str | None = None
    segmentation_path: str | None = None
    codeformer_path: str | None = None
    retinaface_path: str | None = None
    parsenet_path: str | None = None
    upscaler_path: str | None = None
    # The original inference.py flags.
    static: bool = False
    fps: float = 25.0  # only for still images (videos keep their own rate)
    pads: tuple[int, int, int, int] = (0, 10, 0, 0)
    face_det_batch_size: int = 16
    wav2lip_batch_size: int = 128
    resize_factor: int = 1
    crop: tuple[int, int, int, int] = (0, -1, 0, -1)
    box: tuple[int, int, int, int] | None = None
    rotate: bool = False
    nosmooth: bool = False
    # Ours.
    device: str = "auto"
    dtype: str = "auto"
    compile: bool = False  # torch.compile the generator (worth it on CUDA for long videos)
    detector: str | None = None  # None: the variant's detector
    # Longest side of the frames the detector sees (None or 0: full resolution), and detection on every k-th
    # frame with interpolation between (re-detected at cuts): measured in benchmarks/track_agreement.py.
    det_size: int | None = DetectionSettings.det_size
    det_stride: int = DetectionSettings.det_stride
    face_point: tuple[int, int] | None = None  # choose the face nearest this (x, y) instead of the largest
    blend: str = "feather"
    audio_offset_ms: float = 0.0
    crf: int = 18
    preset: str = "medium"
    track_cache: bool = True
    progress: bool = True
    # Inputs (trimming applies to the face video; audio_* to the audio).
    start: str | float | None = None
    end: str | float | None = None
    audio_start: str | float | None = None
    audio_end: str | float | None = None
    cookies: str | None = None
    max_seconds: float | None = None
    # HQ variants.
    no_sr: bool = False
    no_segmentation: bool = False
    mask_feather: int = 8  # feather width of the segmentation mask, in pixels of the face box
    mask_lower_face: float | None = None  # keep the mask only in this lowest fraction of the face box
    # CodeFormer variant.
    fidelity: float = 0.7
    sharpen: float = 0.0
    upscale: int = 1
    # Filled by presets, not by users.
    stages: tuple[str, ...] = field(default=(), repr=False)

    def validate(self) -> RunConfig:
        """Check value ranges; raises LipsyncError naming the flag."""
        checks = [
            (self.variant in VARIANTS, f"--variant must be one of {', '.join(VARIANTS)}"),
            (self.detector in DETECTORS, f"--detector must be one of {', '.join(DETECTORS)}"),
            (self.blend in BLENDS, f"--blend must be one of {', '.join(BLENDS)}"),
            (self.device in DEVICES or self.device.startswith("cuda:"), "--device must be auto, cpu, cuda or cuda:N"),
            (self.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}"),
            (self.fps > 0, "--fps must be positive"),
            (self.face_det_batch_size >= 1 and self.wav2lip_batch_size >= 1, "batch sizes must be at least 1"),
            (self.resize_factor >= 1, "--resize_factor must be an integer >= 1"),
            (self.det_stride >= 1, "--det_stride must be >= 1"),
            (all(p >= 0 for p in self.pads), "--pads must be non-negative"),
            (0.0 <= self.fidelity <= 1.0, "--fidelity must be between 0 and 1"),
            (0 <= self.sharpen <= 5, "--sharpen must be between 0 (off) and 5"),
            (self.upscale in (1, 2), "--upscale must be 1 or 2"),
            (0 <= self.crf <= 51, "--crf must be between 0 and 51"),
            (self.mask_feather >= 0, "--mask_feather must be >= 0"),
            (self.mask_lower_face is None or 0 < self.mask_lower_face <= 1,
             "--mask_lower_face is the lowest fraction of the face box to keep, in (0, 1]"),
            (self.det_size is None or self.det_size >= 0, "--det_size must be >= 0 (0: full resolution)"),
            (self.upscale == 1 or "upscale" in self.stages, "--upscale 2 needs --variant codeformer"),
            (self.sharpen == 0 or "sharpen" in self.stages, "--sharpen needs --variant codeformer"),
        ]
        if tuple(self.crop) != (0, -1, 0, -1):
            t, b, l, r = self.crop
            checks.append((t >= 0 and l >= 0 and (b == -1 or b > t) and (r == -1 or r > l),
                           "--crop needs 0 <= top < bottom and 0 <= left < right (-1: to the edge)"))
        if self.box is not None:
            t, b, left, r = self.box
            checks.append((0 <= t < b and 0 <= left < r, "--box needs top < bottom and left < right, all >= 0"))
        for ok, message in checks:
            if not ok:
                raise LipsyncError(message)
        return self


#: Per variant: overrides of RunConfig defaults, and the enhancement stages it runs after Wav2Lip.
PRESETS: dict[str, dict[str, Any]] = {
    "original": {"detector": "s3fd", "stages": ()},
    "hq": {"detector": "s3fd", "stages": ("sr", "segmentation")},
    "hq_gan": {"detector": "s3fd", "stages": ("sr", "segmentation")},
    "codeformer": {"detector": "retinaface", "stages": ("codeformer", "sharpen", "upscale")},
}

_FIELDS = {f.name for f in fields(RunConfig)}


def make_config(variant: str = "original", **options: Any) -> RunConfig:
    """A validated RunConfig for ``variant`` with user ``options`` (None means "the preset's value")."""
    if variant not in PRESETS:
        raise LipsyncError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    unknown = sorted(set(options) - _FIELDS)
    if unknown:
        raise LipsyncError(f"unknown option(s): {', '.join(unknown)}")
    cfg = replace(RunConfig(variant=variant), **PRESETS[variant])
    given = {k: v for k, v in options.items() if v is not None or k in ("box", "face_point", "det_size")}
    given.pop("stages", None)
    cfg = replace(cfg, **given)
    if cfg.detector is None:
        cfg.detector = PRESETS[variant]["detector"]
    return cfg.validate()
