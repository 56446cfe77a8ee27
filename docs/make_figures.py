"""Draw the README's "2D animation and hard faces" picture from the shared anime media.

    python docs/make_figures.py [--media ../shared/media] [--out docs/anime_faces.jpg]

Left: Sita (a vector cartoon no detector finds), the box set once on frame 0 with ``--track_box`` and followed
to frame 60. Right: Eileen (anime), the anime detector's face box on frame 25 with the cascade's own box.
Both show the mouth-only region (``--mask_region mouth``) as the blend would use it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lipsync_core.face.boxtrack import Keyframe, track_box  # noqa: E402
from lipsync_core.face.detectors.anime import FACE_IN_CASCADE, MOUTH, AnimeFaceDetector  # noqa: E402
from lipsync_core.face.types import MouthInBox  # noqa: E402
from lipsync_core.stages.masks import ellipse_weight, mouth_ellipse  # noqa: E402

BOX, CASCADE, MOUTH_BGR = (60, 220, 60), (200, 160, 40), (40, 40, 230)


def read(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def draw(frame: np.ndarray, box, placement: MouthInBox, label: str) -> np.ndarray:
    t, b, l, r = box
    img = frame.copy()
    weight = ellipse_weight(mouth_ellipse(box, None, placement), (0, 0, img.shape[1], img.shape[0]))
    tint = np.array(MOUTH_BGR, np.float32)
    img = (img + 0.45 * weight[..., None] * (tint - img)).astype(np.uint8)
    cv2.rectangle(img, (l, t), (r - 1, b - 1), BOX, 2)
    cv2.putText(img, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (20, 20, 20), 2, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "anime_faces.jpg")
    args = ap.parse_args(argv)
    anime = args.media / "anime2d"
    regions = json.loads((anime / "detections.json").read_text())["face_region_xyxy"]

    sita = read(anime / "sita_synfig_talk_4s.mp4")
    x1, y1, x2, y2 = regions["sita"]
    tracked = track_box(sita, [Keyframe(0.0, (y1, y2, x1, x2))], fps=25.0, frame_size=(512, 512))
    left = draw(sita[60], tracked.track.boxes[60], MouthInBox(), "Sita: --track_box, frame 60")

    eileen = read(anime / "eileen_renpy_expressions_zoompan_4s.mp4")[25]
    det = AnimeFaceDetector(anime / "lbpcascade_animeface.xml").detect([eileen])[0][0]
    fx1, fy1, fx2, fy2 = (int(round(v)) for v in det.box)
    right = draw(eileen, (fy1, fy2, fx1, fx2), MOUTH, "Eileen: --detector anime")
    # The cascade's own box, recovered from the mapping (hair and forehead included).
    t, b, l, r = FACE_IN_CASCADE
    w, h = (fx2 - fx1) / (r - l), (fy2 - fy1) / (b - t)
    cx, cy = fx1 - l * w, fy1 - t * h
    cv2.rectangle(right, (int(cx), int(cy)), (int(cx + w), int(cy + h)), CASCADE, 1)

    height = 400
    panels = [cv2.resize(p, (round(p.shape[1] * height / p.shape[0]), height), interpolation=cv2.INTER_AREA)
              for p in (left, right)]
    gap = np.full((height, 8, 3), 255, np.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.hstack([panels[0], gap, panels[1]]), [cv2.IMWRITE_JPEG_QUALITY, 82])
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
