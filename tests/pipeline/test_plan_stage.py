"""A stage added through the catalog (:meth:`Catalog.extend`) runs without editing the pipeline."""
from __future__ import annotations

import numpy as np

from lipsync_core.engine.catalog import CATALOG, StageSpec, Variant
from lipsync_core.engine.plan import Plan, make_config
from lipsync_core.job import run, session_for
from lipsync_core.media.video import read_frames


class Tint:
    """A stage written in a test: darkens every pixel of frames with a face."""

    name = "tint"

    def __call__(self, batch) -> None:
        for i in batch.face_positions:
            batch.frames[i] //= 2


def test_a_stage_added_through_the_catalog_runs_without_editing_the_pipeline(tmp_path, face_clip, speech,
                                                                             w2l_checkpoint):
    face, box = face_clip

    catalog = CATALOG.extend(stages=[StageSpec("tint", lambda ctx: Tint())],
                             variants=[Variant("tinted", "test", ("sync", "blend", "tint"))])
    cfg = make_config("tinted", catalog=catalog, checkpoint_path=str(w2l_checkpoint), box=box,
                      no_progress=True, quiet=True)
    assert [s.name for s in Plan.from_options(cfg, catalog).stages] == ["sync", "blend", "tint"]
    plain = make_config("original", checkpoint_path=str(w2l_checkpoint), box=box, quiet=True)
    out_t, out_p = tmp_path / "t.mp4", tmp_path / "p.mp4"
    run(session_for(cfg, catalog=catalog), face, speech, out_t)
    run(session_for(plain), face, speech, out_p)
    tinted, original = (np.stack(list(read_frames(p)))[:5].astype(float) for p in (out_t, out_p))
    assert tinted.mean() < 0.7 * original.mean()
