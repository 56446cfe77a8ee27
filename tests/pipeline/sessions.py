"""Sessions for the pipeline tests: one run's session, and the passes called the way the job calls them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lipsync_core.engine.plan import make_config
from lipsync_core.engine.session import Session
from lipsync_core.engine.track import track_faces
from lipsync_core.face.types import FaceTrack
from lipsync_core.job import run, session_for
from lipsync_core.media.face_video import FaceVideo


def session(variant: str = "original", catalog: Any = None, **options: Any) -> Session:
    return session_for(make_config(variant, catalog=catalog, **options) if catalog else
                       make_config(variant, **options), catalog=catalog)


def track(s: Session, video: FaceVideo, n_needed: int) -> FaceTrack:
    """Pass 1 as the job runs it."""
    return track_faces(s, video, s.plan.options.detection, n_needed)


def render_run(s: Session, face: Any, audio: Any, out: Path) -> Path:
    run(s, face, audio, out)
    return Path(out)
