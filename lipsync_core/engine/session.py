"""The session: what a run computes with — its plan's weights, the runtime, the loaded models, the detector and
the opened face video — handed out ready to the two passes and to scoring, batch, training and the notebooks.

A session is built for one :class:`~lipsync_core.engine.plan.Plan`; a :class:`~lipsync_core.compute.runtime.Runtime`
may be shared between sessions (a batch worker's), so models are loaded once per runtime.
"""
from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compute.runtime import Runtime
from ..media.face_video import FaceVideo
from ..support.errors import LipsyncError
from .catalog import BuildContext, RenderInputs
from .plan import Plan

if TYPE_CHECKING:
    from torch import nn

    from ..compute.handle import ModelHandle
    from ..face.types import Detector
    from ..stages.base import Stage
    from ..weights.manifest import Manifest


@dataclass
class Timings:
    """Seconds spent per step of the run (for the benchmarks and the log)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, name: str, t0: float) -> None:
        self.seconds[name] += time.perf_counter() - t0


def fetch_weights(plan: Plan, roles: list[str] | None = None, *, have: dict[str, Path] | None = None
                  ) -> dict[str, Path]:
    """Fetch (or find in the cache) the weights of ``roles`` (default: every role ``plan`` loads).

    Every role is tried; when some cannot be had, one LipsyncError lists all of them with the flag to use.
    """
    from .. import models
    from ..weights import store
    from ..weights.manifest import load_manifest

    manifest = load_manifest()
    found = dict(have or {})
    problems: list[str] = []
    progress = plan.options.progress
    for role in plan.roles if roles is None else roles:
        if role in found:
            continue
        wid = plan.resolve_weight_id(role, manifest)
        source = plan.source(role)
        if source == wid:
            source = None  # named by its manifest id (e.g. --checkpoint_path wav2lip_gan): its own sources
        flag = plan.catalog.roles[role].flag
        try:
            found[role] = store.fetch(wid, source=source, cache_dir=plan.options.fetch.cache_dir,
                                      validate=models.validator(manifest.entry(wid).arch,
                                                                lambda a: plan.catalog.flag_for_arch(a, manifest)),
                                      progress=progress, flag=flag)
        except LipsyncError as exc:  # a user's own source names its flag already
            problems.append(str(exc) if str(exc).startswith(flag) else f"{exc} (give the file with {flag})")
    if problems:
        det = plan.detector
        if det is not None and det.role and len(problems) == 1 and det.role not in found:
            problems[0] += "; or use --detector haar, which needs no download"
        raise LipsyncError(problems[0] if len(problems) == 1 else
                           f"{len(problems)} weight files could not be had: " + " | ".join(problems))
    return found


class Session:
    """Device, precision, weights and loaded models of one plan; ready handles for the passes.

    ``Session(plan)`` fetches nothing yet: :meth:`fetch_weights` does, before any video is decoded (so a missing
    file fails fast), and every other method uses what it fetched.
    """

    def __init__(self, plan: Plan, *, runtime: Runtime | None = None) -> None:
        self.plan = plan
        compute = plan.options.compute
        self.runtime = runtime or Runtime.resolve(compute.device, compute.dtype)
        self.timings = Timings()
        self.weights: dict[str, Path] = {}
        self._manifest: Manifest | None = None

    # -- weights and models ------------------------------------------------------------------------------
    def fetch_weights(self) -> dict[str, Path]:
        """Every weight file the plan needs, fetched once (see :func:`fetch_weights`)."""
        self.weights = fetch_weights(self.plan, have=self.weights)
        return self.weights

    def arch(self, role: str) -> str:
        """The registry architecture of ``role``'s weights."""
        from ..weights.manifest import load_manifest

        if self._manifest is None:
            self._manifest = load_manifest()
        return self._manifest.entry(self.plan.resolve_weight_id(role, self._manifest)).arch

    def model(self, role: str) -> nn.Module:
        """The loaded, placed float32 module of ``role`` (fetched by :meth:`fetch_weights`), for code that runs it
        itself (the sync scorers, training)."""
        return self.runtime.model(self.arch(role), self.weights[role])

    def handle(self, role: str, *, compile: bool = False) -> ModelHandle:
        """``role``'s model ready to call: on the device, in its precision (autocast, int8), inference mode."""
        return self.runtime.load(self.arch(role), self.weights[role], compile=compile)

    def build_context(self, inputs: RenderInputs | None = None) -> BuildContext:
        options = self.plan.options
        return BuildContext(render=options.render, detection=options.detection, handle=self.handle,
                            path=self.weights.__getitem__, detector=self.plan.detector, inputs=inputs)

    def stages(self, inputs: RenderInputs | None = None) -> list[Stage]:
        """The render stages of the plan, in order, ready to be called (``inputs``: the render pass's speech,
        video and face track, for stages that read them when built)."""
        ctx = self.build_context(inputs)
        return [spec.build(ctx) for spec in self.plan.stages]

    # -- the detector ------------------------------------------------------------------------------------
    def detector(self) -> Detector:
        """The plan's face detector, built on the runtime."""
        assert self.plan.detector is not None
        return self.plan.detector.build(self.build_context())

    def detector_precision(self) -> str:
        """What the detector computes in (``int8``, ``bfloat16``, ``float32``, ...): part of the track's key."""
        det = self.plan.detector
        return self.runtime.precision_for(self.arch(det.role)) if det is not None and det.role else "float32"

    def detector_identity(self) -> str:
        """The detector's name, weights, device and precision: what the face-track cache key needs besides the
        detection options and the video."""
        det = self.plan.detector
        assert det is not None
        ident = det.name
        if det.role:
            path = self.weights[det.role]
            st = path.stat()
            ident = f"{det.name}:{path.name}:{st.st_size}:{st.st_mtime_ns}"
        return f"{ident}:{self.runtime.device.type}:{self.detector_precision()}"

    def release_detector(self) -> None:
        """Pass 1 is over: the detector's weights (90-110 MB) are not needed while rendering."""
        det = self.plan.detector
        if det is not None and det.role and det.role in self.weights:
            self.runtime.release(self.arch(det.role), self.weights[det.role])

    # -- video and messages ------------------------------------------------------------------------------
    def open_video(self, path: str | Path) -> FaceVideo:
        """The face video as the plan's video options open it."""
        v = self.plan.options.video
        t, b, l, r = v.crop  # a list when it comes from the command line or JSON
        return FaceVideo.open(path, still_fps=v.fps, static=v.static, resize_factor=v.resize_factor,
                              rotate=v.rotate, crop=(t, b, l, r))

    def info(self, message: str) -> None:
        """A summary or info line on stderr, unless ``--quiet``."""
        if not self.plan.options.messages.quiet:
            print(f"lipsync: {message}", file=sys.stderr)

    def bar(self, total: int | None, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="frame", disable=not self.plan.options.progress, leave=False)

    def timed(self, it: Iterator, name: str) -> Iterator:
        """``it``, with the time spent producing each item added to timing ``name``."""
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                return
            finally:
                self.timings.add(name, t0)
            yield item
