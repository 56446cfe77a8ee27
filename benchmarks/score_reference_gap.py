"""The end-to-end gap between ``lipsync score`` and the reference scorer on the shared clip.

The reference run (``../shared/reference/syncnet/evaluate_io.npz``) was fed 100 JPEG frames of a hand-made
224 px crop of ``talking_head_man_vrt2.mp4`` (ffmpeg crop 490:490:185:250, bicubic, XVID) and that clip's
16 kHz PCM. Given those frames and that audio our scorer is equal (tests/score/test_sync_parity.py); this
measures what differs when we make the frames ourselves, step by step:

* ``avi``: the reference's own clip decoded by us, without / with our JPEG round trip (the decode+JPEG step);
* ``fixed``: our crop code at the reference clip's exact geometry on the source video (scaling and codec);
* ``tracked``: our face track (Haar: the only detector with real weights here) and the reference crop
  geometry with its median filter, i.e. what ``score_video`` feeds;

and, for each, the frames' PSNR against the reference's frames and the LSE-D / LSE-C / offset with the
procedural weights (absolute values are meaningless with them; the differences are what the step costs).
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import cv2
import numpy as np

from lipsync_core.face.detectors.haar import HaarDetector
from lipsync_core.face.track import DetectionOptions, build_track
from lipsync_core.media.audio import load_audio_int16
from lipsync_core.media.video import read_frames
from lipsync_core.score.crop import crop_params, jpeg_round_trip, syncnet_crop
from lipsync_core.score.embed import SyncNetEmbedder
from lipsync_core.score.sync import score_syncnet
from lipsync_core.testing.checkpoints import procedural_module

SHARED = Path(os.environ.get("LIPSYNC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
REF = SHARED / "reference" / "syncnet"
SOURCE = SHARED / "media" / "talking_head_man_vrt2.mp4"
N = 100


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def main() -> None:
    with np.load(REF / "evaluate_io.npz") as z:
        ref = dict(z)
    data, off = ref["frames_jpeg"], ref["frames_jpeg_offsets"]
    ref_frames = np.stack([cv2.imdecode(data[off[t]:off[t + 1]], cv2.IMREAD_COLOR) for t in range(N)])
    audio = ref["audio_int16"]
    own_audio = load_audio_int16(SOURCE)[:len(audio)]
    diff = np.abs(own_audio - audio.astype(int)).max()
    print(f"audio: source decoded by us vs the reference's PCM: max |diff| {diff} of 32768")

    source = np.stack(read_frames(SOURCE, fps=25, max_frames=N))
    clip = np.stack(read_frames(REF / "evaluate_clip_man_vrt2_224.avi"))
    fixed = np.stack([syncnet_crop(f, 175.0, 430.0, 425.0) for f in source])
    settings = DetectionOptions(detector="haar", pads=(0, 0, 0, 0), nosmooth=True)
    det = [cv2.resize(f, (360, 360), interpolation=cv2.INTER_AREA) for f in source]
    track = build_track(det, HaarDetector(), settings, scale=360 / 844, frame_size=(844, 844), fps=25)
    params = crop_params(track.boxes)
    tracked = np.stack([syncnet_crop(f, *p) for f, p in zip(source, params)])
    s, x, y = np.median(params, axis=0)
    print(f"crop geometry: reference s=175 x=430 y=425; tracked (median over frames) s={s:.1f} x={x:.1f} y={y:.1f}")

    emb = SyncNetEmbedder(procedural_module("syncnet_v2"))
    base = score_syncnet(iter(ref_frames), audio, emb.video, emb.audio, n_frames=N)
    print(f"{'frames fed':34s} {'PSNR dB':>8s} {'LSE-D':>9s} {'dLSE-D':>7s} {'LSE-C':>7s} {'dLSE-C':>7s} "
          "off  max|dD|")
    cases = [("reference JPEGs (parity)", ref_frames), ("avi decoded, no JPEG", clip),
             ("avi decoded + our JPEG", list(jpeg_round_trip(clip))),
             ("fixed geometry + JPEG", list(jpeg_round_trip(fixed))),
             ("tracked (Haar) + JPEG", list(jpeg_round_trip(tracked))), ("tracked (Haar), no JPEG", tracked)]
    for label, frames in cases:
        frames = np.stack(list(itertools.islice(frames, N)))
        res = score_syncnet(iter(frames), audio, emb.video, emb.audio, n_frames=N)
        print(f"{label:34s} {psnr(frames, ref_frames):8.2f} {res.lse_d:9.3f} {res.lse_d - base.lse_d:+7.3f} "
              f"{res.lse_c:7.3f} {res.lse_c - base.lse_c:+7.3f} {res.offset:+3d}  "
              f"{np.abs(res.dists - base.dists).max():.3f}")


if __name__ == "__main__":
    main()
