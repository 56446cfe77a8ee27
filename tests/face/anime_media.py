"""The shared 2D-animation media (../shared/media/anime2d): frames, hand-set face regions, the cascade."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from tests.conftest import shared_path

SITA = "sita_synfig_talk_4s.mp4"
EILEEN = "eileen_renpy_expressions_zoompan_4s.mp4"
FPS = 25.0


def anime_path(name: str) -> Path:
    return shared_path("media", "anime2d", name)


def cascade() -> Path:
    return anime_path("lbpcascade_animeface.xml")


@lru_cache(maxsize=4)
def _frames(path: str) -> tuple[np.ndarray, ...]:
    cap = cv2.VideoCapture(path)
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frame.setflags(write=False)
        out.append(frame)
    cap.release()
    return tuple(out)


def frames(name: str) -> list[np.ndarray]:
    """Every frame of a shared clip, uint8 BGR (decoded once per test session)."""
    return list(_frames(str(anime_path(name))))


def face_region(who: str) -> tuple[int, int, int, int]:
    """The hand-set face region of ``sita``/``eileen`` as (x1, y1, x2, y2)."""
    data = json.loads(anime_path("detections.json").read_text())
    return tuple(data["face_region_xyxy"][who])  # type: ignore[return-value]


def on_face(box: tuple[int, int, int, int], region: tuple[int, int, int, int]) -> bool:
    """The README's rule: the box centre inside the region and the box at least 0.4 x the region's width."""
    t, b, l, r = box
    x1, y1, x2, y2 = region
    return x1 <= (l + r) / 2 <= x2 and y1 <= (t + b) / 2 <= y2 and r - l >= 0.4 * (x2 - x1)
