"""The chart variant: mouth charts (auto from a clip, a folder of sprites with fallbacks), the checks, the paste
that leaves every other pixel alone, ``lipsync chart extract`` and an offline run without Wav2Lip weights."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipsync_core.engine.chart import mouth_track
from lipsync_core.engine.plan import make_config
from lipsync_core.face.boxtrack import Keyframe
from lipsync_core.face.types import FaceTrack
from lipsync_core.media.face_video import FaceVideo
from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.stages.chart import (
    FALLBACK,
    MouthChart,
    TooFewDrawings,
    extract_chart,
    group_drawings,
    load_chart_dir,
    min_cost_matching,
    mouth_patches,
    patch_size,
)
from lipsync_core.support.errors import LipsyncError
from tests.conftest import REPO, shared_media

W = H = 160
MOUTH_BOX = (100, 124, 58, 102)  # top bottom left right, around every drawn mouth
#: (half width, half height, inside colour or None) of the generated mouth drawings: closed, open, wide open,
#: round.
MOUTHS = [(16, 1, None), (15, 6, (40, 20, 60)), (18, 10, (30, 10, 40)), (7, 8, (40, 20, 60))]


def face_frame(mouth: int, angle: float = 0.0) -> np.ndarray:
    img = np.full((H, W, 3), (235, 225, 215), np.uint8)
    cv2.ellipse(img, (80, 84), (50, 62), 0, 0, 360, (170, 200, 245), -1)
    for x in (60, 100):
        cv2.circle(img, (x, 70), 9, (255, 255, 255), -1)
        cv2.circle(img, (x + 2, 71), 4, (20, 20, 20), -1)
    cv2.line(img, (80, 80), (76, 96), (90, 120, 170), 2)
    ax, ay, inside = MOUTHS[mouth]
    cv2.ellipse(img, (80, 112), (ax, ay + 2), 0, 0, 360, (50, 40, 170), -1)
    if inside is not None:
        cv2.ellipse(img, (80, 112), (max(1, ax - 3), ay), 0, 0, 360, inside, -1)
    if angle:
        img = cv2.warpAffine(img, cv2.getRotationMatrix2D((80, 150), angle, 1.0), (W, H),
                             borderMode=cv2.BORDER_REPLICATE)
    return img


def write_clip(path: Path, mouths: list[int], angles: list[float] | None = None) -> Path:
    frames_dir = path.parent / f"{path.stem}_frames"
    frames_dir.mkdir()
    for i, m in enumerate(mouths):
        cv2.imwrite(str(frames_dir / f"{i:04d}.png"), face_frame(m, angles[i] if angles else 0.0))
    run_ffmpeg(["-y", "-framerate", "25", "-i", str(frames_dir / "%04d.png"), "-c:v", "libx264", "-qp", "0",
                "-pix_fmt", "yuv420p", str(path)], what="write a test clip")
    return path


SEQUENCE = [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 0, 0, 2, 2, 1, 1, 3, 3, 0, 0] * 2


@pytest.fixture(scope="module")
def cartoon(tmp_path_factory) -> Path:
    """1.6 s of a drawn face talking with four mouth drawings while its head tilts a few degrees."""
    angles = [4 * np.sin(i / 6) for i in range(len(SEQUENCE))]
    return write_clip(tmp_path_factory.mktemp("cartoon") / "cartoon.mp4", SEQUENCE, angles)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "line.wav"
    real = shared_media("anime2d/sita_redub_line.wav")
    if real is not None:
        run_ffmpeg(["-y", "-i", str(real), "-t", "1.2", str(path)], what="cut test speech")
    else:
        run_ffmpeg(["-y", "-f", "lavfi", "-i", "sine=frequency=220:beep_factor=4:duration=1.2", str(path)],
                   what="generate test speech")
    return path


def auto_chart(clip: Path, box: tuple[int, int, int, int] = MOUTH_BOX) -> MouthChart:
    video = FaceVideo.open(clip, still_fps=25, static=False)
    n = sum(1 for _ in video.frames())
    whole = FaceTrack.constant((0, H, 0, W), n, fps=video.fps, frame_size=video.frame_size)
    track = mouth_track(video, whole, [Keyframe(0.0, box)], follows_face=False)
    return extract_chart(mouth_patches(video.frames(), track), track.size)


def openness(img: np.ndarray) -> int:
    """Rows of the drawing with the dark inside of an open mouth."""
    return int(((img[..., :3].astype(int).sum(axis=2) < 200) & (img[..., 3] > 128)).any(axis=1).sum())


def test_the_auto_chart_finds_the_clips_drawings_and_names_closed_and_open_ones(cartoon):
    chart = auto_chart(cartoon)
    assert len({id(d) for d in chart.drawings.values()}) >= 4
    assert openness(chart.drawing("A")) == 0 and openness(chart.drawing("X")) == 0
    assert openness(chart.drawing("D")) >= openness(chart.drawing("C")) > 0


def test_the_sita_chart_has_her_distinct_mouth_drawings():
    sita = shared_media("anime2d/sita_redub_source_7s.mp4")
    if sita is None:
        pytest.skip("the shared Sita clip is not here (the generated clip covers the chart)")
    chart = auto_chart(sita, (186, 226, 226, 288))
    assert len({id(d) for d in chart.drawings.values()}) >= 6
    classes = json.loads(Path(f"{sita}.track.json").read_text())["classes"]  # the rig's mouth per frame
    assert classes[chart.frames["D"]] == "AA" and classes[chart.frames["X"]] in ("rest", "MBP")
    assert classes[chart.frames["F"]] == "O"


def test_copies_of_one_drawing_split_by_the_tracks_wobble_are_one_drawing():
    t, b, l, r = MOUTH_BOX
    size = patch_size((r - l, b - t))
    y0, x0 = t - (size[1] - (b - t)) // 2, l - (size[0] - (r - l)) // 2
    patches = {}
    for m in range(4):
        for _ in range(3):  # each drawing on three frames, the first one also one pixel off on three more
            patches[len(patches)] = face_frame(m)[y0:y0 + size[1], x0:x0 + size[0]].copy()
            if m == 0:
                patches[len(patches)] = face_frame(m)[y0 + 1:y0 + 1 + size[1], x0 + 1:x0 + 1 + size[0]].copy()
    assert len(group_drawings(patches, (r - l, b - t), threshold=9.0)) == 4
    split = group_drawings(patches, (r - l, b - t), threshold=1.0)  # the pixel's shift over the threshold
    assert len(split) == 4 and sorted(d.count for d in split) == [3, 3, 3, 6]


def test_a_clip_with_fewer_than_three_drawings_says_how_many_it_found(tmp_path):
    clip = write_clip(tmp_path / "still.mp4", [0] * 10 + [1] * 10)
    with pytest.raises(TooFewDrawings, match=r"shows 2 distinct mouth drawing.*--mouth_chart DIR") as info:
        auto_chart(clip)
    assert "\n" not in str(info.value)


def sprite(colour: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    img = np.zeros((size[1], size[0], 4), np.uint8)
    cv2.ellipse(img, (size[0] // 2, size[1] // 2), (size[0] // 2 - 1, size[1] // 2 - 1), 0, 0, 360,
                (*colour, 255), -1)
    return img


def test_a_sprite_chart_fills_missing_shapes_by_the_fallback_table(tmp_path):
    cv2.imwrite(str(tmp_path / "A.png"), sprite((0, 0, 200), (40, 10)))
    cv2.imwrite(str(tmp_path / "D.png"), sprite((0, 200, 0), (80, 60)))  # any size: scaled with the others
    chart = load_chart_dir(tmp_path, (44, 24))
    assert chart.drawing("A").shape == (24, 44, 4) and chart.drawing("D").shape == (24, 44, 4)
    assert chart.drawing("X") is chart.drawings["A"] and chart.drawing("G") is chart.drawings["A"]
    assert chart.drawing("C") is chart.drawings["D"] and chart.drawing("H") is chart.drawings["D"]
    assert chart.drawing("B") is chart.drawings["A"]  # B: C, G missing, then A
    assert set(FALLBACK) == set("ABCDEFGHX") and all(set("AX") & set(v) and set("CD") & set(v)
                                                     for k, v in FALLBACK.items())
    # relative sizes kept: the closed sprite is narrower than the open one
    assert (chart.drawing("A")[..., 3] > 0).sum() < (chart.drawing("D")[..., 3] > 0).sum()


@pytest.mark.parametrize("names", [["B", "C"], ["A", "X", "E"]])
def test_a_sprite_chart_needs_a_closed_and_an_open_drawing(tmp_path, names):
    for n in names:
        cv2.imwrite(str(tmp_path / f"{n}.png"), sprite((0, 0, 200), (40, 20)))
    with pytest.raises(LipsyncError, match="needs (a closed|an open) drawing") as info:
        load_chart_dir(tmp_path, (40, 20))
    assert "\n" not in str(info.value)


def test_chart_options_are_refused_by_other_variants():
    with pytest.raises(LipsyncError, match="--dialog_file needs --variant chart"):
        make_config("original", dialog_file="line.txt")
    with pytest.raises(LipsyncError, match="--hold_frames needs --variant chart"):
        make_config("hq", hold_frames=2)
    cfg = make_config("chart", mouth_box=["1 2 3 4", "5 6 7 8 @1"], hold_frames=2)
    assert cfg.mouth_box == ("1 2 3 4", "5 6 7 8 @1") and cfg.detector is None and not cfg.detection.detects
    with pytest.raises(LipsyncError, match="--mouth_box"):
        make_config("chart", mouth_box=["1 2 3"])


def lipsync(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LIPSYNC_OFFLINE": "1", "LIPSYNC_CACHE": str(cache), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "lipsync_core", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_an_offline_run_without_weights_changes_only_the_mouth_and_writes_the_cues(cartoon, speech, tmp_path):
    cache = tmp_path / "empty_cache"
    cache.mkdir()
    out = tmp_path / "redub.mp4"
    box = " ".join(map(str, MOUTH_BOX)).split()
    done = lipsync("--variant", "chart", "--face", str(cartoon), "--audio", str(speech), "--mouth_box", *box,
                   "--recognizer", "phonetic", "--crf", "0", "--device", "cpu", "--outfile", str(out), cache=cache)
    assert done.returncode == 0, done.stderr
    assert list(cache.iterdir()) == []  # nothing downloaded or cached
    cues = json.loads((tmp_path / "redub.cues.json").read_text())
    assert cues["mouthCues"] and cues["metadata"]["soundFile"] == str(speech.resolve())
    src = FaceVideo.open(cartoon, still_fps=25, static=False)
    got = FaceVideo.open(out, still_fps=25, static=False)
    outside = np.ones((H, W), bool)
    outside[MOUTH_BOX[0] - 8:MOUTH_BOX[1] + 8, MOUTH_BOX[2] - 8:MOUTH_BOX[3] + 8] = False
    n = 0
    for a, b in zip(src.frames(), got.frames()):
        diff = np.abs(a.astype(int) - b.astype(int)).max(axis=2)
        assert np.percentile(diff[outside], 99.9) <= 6 and diff[outside].mean() < 1.0
        n += 1
    assert n == 30  # as long as the 1.2 s of audio


def test_the_closed_and_open_requirement_is_one_line_and_nothing_is_written(cartoon, speech, tmp_path):
    chart = tmp_path / "chart"
    chart.mkdir()
    cv2.imwrite(str(chart / "B.png"), sprite((0, 0, 200), (40, 20)))
    out = tmp_path / "out" / "redub.mp4"
    done = lipsync("--variant", "chart", "--face", str(cartoon), "--audio", str(speech), "--mouth_box",
                   *" ".join(map(str, MOUTH_BOX)).split(), "--mouth_chart", str(chart), "--device", "cpu",
                   "--outfile", str(out), cache=tmp_path / "cache")
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "needs a closed drawing" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_chart_extract_writes_the_drawings_and_a_contact_sheet(cartoon, tmp_path, capsys):
    from lipsync_core.front.chart_cli import main

    out = tmp_path / "chart"
    assert main(["extract", str(cartoon), "--out", str(out), "--mouth_box", *map(str, MOUTH_BOX), "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert "contact_sheet.png" in names and {"A.png", "D.png"} <= set(names)
    assert cv2.imread(str(out / "contact_sheet.png")) is not None
    assert capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "chart.json").read_text()) == {"mouth": [11.0, 6.0, 44.0, 24.0], "cover": False}
    back = load_chart_dir(out, (44, 24))  # the folder works as --mouth_chart DIR
    assert not back.cover and set(back.drawings) == {n[0] for n in names if n.endswith(".png")} - {"c"}


def test_chart_extract_never_overwrites_drawings_already_in_the_folder(cartoon, tmp_path):
    from lipsync_core.front.chart_cli import main
    from lipsync_core.support.errors import LipsyncError

    out = tmp_path / "chart"
    out.mkdir()
    (out / "A.png").write_bytes(b"a drawing the user redrew")
    with pytest.raises(LipsyncError, match=r"already holds a chart \(A.png\)"):
        main(["extract", str(cartoon), "--out", str(out), "--mouth_box", *map(str, MOUTH_BOX), "--quiet"])
    assert [p.name for p in out.iterdir()] == ["A.png"]
    assert (out / "A.png").read_bytes() == b"a drawing the user redrew"


def test_an_extracted_chart_comes_back_with_its_margin_and_without_it_is_scaled_to_the_mouth_box(cartoon, tmp_path):
    chart = auto_chart(cartoon)
    chart.save(tmp_path / "chart")
    back = load_chart_dir(tmp_path / "chart", (44, 24))  # the extracting run's mouth box: the same drawings
    assert back.size == chart.size and not back.cover and back.mouth == chart.mouth
    for shape, img in chart.drawings.items():
        assert np.array_equal(back.drawings[shape], img)
    bigger = load_chart_dir(tmp_path / "chart", (88, 48))  # a mouth twice the size: the drawings too, centred
    assert bigger.size == (2 * chart.size[0], 2 * chart.size[1]) and bigger.mouth == (22.0, 12.0, 88.0, 48.0)
    a, b = chart.drawings["D"][..., 3] > 128, bigger.drawings["D"][..., 3] > 128
    assert abs(b.sum() / a.sum() - 4) < 0.3
    centre = lambda m: np.argwhere(m).mean(axis=0) / m.shape  # noqa: E731
    assert np.allclose(centre(a), centre(b), atol=0.02)
    (tmp_path / "chart" / "chart.json").unlink()  # sprites without it: scaled to the mouth box, covering
    plain = load_chart_dir(tmp_path / "chart", (44, 24))
    assert plain.size == (44, 24) and plain.cover
    (tmp_path / "chart" / "chart.json").write_text('{"mouth": [1, 2]}')
    with pytest.raises(LipsyncError, match="chart.json is not a chart file"):
        load_chart_dir(tmp_path / "chart", (44, 24))


def test_the_shape_matching_is_the_least_costly_one_to_one_matching():
    rng = np.random.default_rng(0)
    for n, m in [(5, 7), (6, 4), (5, 5), (1, 3), (3, 1)]:
        for _ in range(20):
            cost = np.round(rng.random((n, m)) * 4)
            rows, cols = min_cost_matching(cost)
            assert len(rows) == len(set(rows)) == len(set(cols)) == min(n, m)
            if n <= m:
                best = min(sum(cost[i, c] for i, c in enumerate(p)) for p in itertools.permutations(range(m), n))
            else:
                best = min(sum(cost[r, j] for j, r in enumerate(p)) for p in itertools.permutations(range(n), m))
            assert cost[rows, cols].sum() == pytest.approx(best)
