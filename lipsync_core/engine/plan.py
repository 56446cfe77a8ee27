"""What one run consists of: its :class:`Plan`, and the run options resolved and checked against the catalog.

:class:`Plan` is derived from :class:`~lipsync_core.engine.options.RunOptions` and a
:class:`~lipsync_core.engine.catalog.Catalog`; it is the only place that knows which detector and stages a run
has, which weights they need, the output scale and whether stages need landmarks.

Every option is "unset" until resolved (:func:`make_config`): a value given explicitly wins, then the variant's
preset (:class:`~lipsync_core.engine.catalog.Variant`), then the field's default. Weights are one mapping
role -> source; the API and the CLI take them as ``<role>_path`` (``checkpoint_path``, ``s3fd_path``, ...).
Validation happens here, once, for every front end.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..support.errors import LipsyncError
from ..support.options import check_option, choices_of, field_default
from .catalog import CATALOG, Catalog, DetectorSpec, StageSpec
from .options import OPTIONS, RunOptions, option_fields

if TYPE_CHECKING:
    from ..weights.manifest import Manifest


@dataclass(frozen=True)
class Plan:
    """The detector and ordered active stages of one run, and everything derived from them."""

    options: RunOptions
    catalog: Catalog
    detector: DetectorSpec | None  # None: a fixed --box or keyframed --track_box, nothing is detected
    stages: tuple[StageSpec, ...]

    @classmethod
    def from_options(cls, options: RunOptions, catalog: Catalog | None = None) -> Plan:
        catalog = catalog or CATALOG
        variant = catalog.variant(options.variant)
        det = options.detection
        detector = catalog.detectors[det.detector] if det.detects else None
        stages = tuple(s for s in (catalog.stages[name] for name in variant.stages) if s.enabled(options.render))
        return cls(options=options, catalog=catalog, detector=detector, stages=stages)

    @property
    def roles(self) -> list[str]:
        """The weight roles this run loads, detector first (nothing it skips is downloaded)."""
        roles = [self.detector.role] if self.detector is not None and self.detector.role else []
        for stage in self.stages:
            roles += [r for r in stage.roles if r not in roles]
        sc = self.options.scoring
        scoring = ([sc.scorer] if sc.score else []) + (["syncnet"] if sc.fix_offset else [])
        return roles + [r for r in dict.fromkeys(scoring) if r not in roles]

    @property
    def scale(self) -> int:
        """Output size over input size."""
        s = 1
        for stage in self.stages:
            s *= stage.scale(self.options.render)
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
        return self.catalog.weight_id(self.options.variant, role)

    def source(self, role: str) -> str | None:
        """The user's source for ``role`` (path, URL, Drive ID or manifest id), or None for the variant's."""
        return self.options.weights.get(role)

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


def option_names(catalog: Catalog = CATALOG) -> list[str]:
    """Every name the API and the CLI accept: options and ``<role>_path``."""
    return [*OPTIONS, *(r.option for r in catalog.roles.values())]


def preset_config(variant: str = "original", catalog: Catalog = CATALOG) -> RunOptions:
    """The variant's defaults, before any user value (what ``--help`` shows for that variant)."""
    v = catalog.variant(variant)
    return RunOptions(variant=variant).replace(**dict(v.defaults))


def make_config(variant: str | None = "original", catalog: Catalog = CATALOG, **options: Any) -> RunOptions:
    """A validated RunOptions for ``variant`` with user ``options`` (flag names; None means unset)."""
    given = {k: v for k, v in options.items() if v is not None}
    known = set(option_names(catalog))
    unknown = sorted(set(options) - known)
    if unknown:
        hints = [f"{u} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(u, known, 1)) else u
                 for u in unknown]
        raise LipsyncError(f"unknown option(s): {', '.join(hints)}")
    variant = given.pop("variant", None) or variant or "original"
    weights = {r.name: str(given.pop(r.option)) for r in catalog.roles.values() if r.option in given}
    cfg = preset_config(variant, catalog).replace(weights=weights, **{k: _coerce(k, v) for k, v in given.items()})
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


def validate(cfg: RunOptions, catalog: Catalog = CATALOG, explicit: set[str] | None = None) -> RunOptions:
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


def _check_stage_options(cfg: RunOptions, catalog: Catalog, explicit: set[str] | None) -> None:
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
