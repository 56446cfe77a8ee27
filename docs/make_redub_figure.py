"""Draw the README's 2D re-dub picture: the chart ``lipsync chart extract`` takes from the Sita clip, and a few
frames of the source, the re-dub (``--variant chart``) and the truth render side by side.

    python docs/make_redub_figure.py [--media ../shared/media] [--out docs/redub_2d.jpg]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MOUTH_BOX = ("186", "226", "226", "288")  # top bottom left right on frame 0 of sita_redub_source_7s.mp4
FRAMES = (12, 40, 66, 104)
ROW = ("source", "re-dub", "truth")


def frames(path: Path, wanted: tuple[int, ...]) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    out: dict[int, np.ndarray] = {}
    i = 0
    while len(out) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = frame
        i += 1
    return [out[k] for k in wanted if k in out]


def crop(frame: np.ndarray) -> np.ndarray:
    """The face: the mouth with its surroundings, enlarged."""
    return cv2.resize(frame[110:300, 160:350], (190, 190), interpolation=cv2.INTER_AREA)


def lipsync(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "lipsync_core", *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "redub_2d.jpg")
    a = p.parse_args(argv)
    sita = a.media / "anime2d"
    source, truth, line = (sita / n for n in ("sita_redub_source_7s.mp4", "sita_redub_truth_7s.mp4",
                                                "sita_redub_line.wav"))
    with tempfile.TemporaryDirectory() as work:
        w = Path(work)
        lipsync("chart", "extract", str(source), "--out", str(w / "chart"), "--mouth_box", *MOUTH_BOX)
        lipsync("--variant", "chart", "--face", str(source), "--audio", str(line), "--mouth_box", *MOUTH_BOX,
                "--device", "cpu", "--outfile", str(w / "redub.mp4"))
        sheet = cv2.imread(str(w / "chart" / "contact_sheet.png"))
        rows = [np.hstack([crop(f) for f in frames(v, FRAMES)]) for v in (source, w / "redub.mp4", truth)]
    labelled = []
    for label, row in zip(ROW, rows):
        strip = np.full((24, row.shape[1], 3), 255, np.uint8)
        text = f"{label}: frames {', '.join(str(f) for f in FRAMES)}"
        cv2.putText(strip, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
        labelled += [strip, row]
    grid = np.vstack(labelled)
    scale = grid.shape[0] / sheet.shape[0]
    sheet = cv2.resize(sheet, (round(sheet.shape[1] * scale), grid.shape[0]), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(a.out), np.hstack([sheet, np.full((grid.shape[0], 8, 3), 255, np.uint8), grid]),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
