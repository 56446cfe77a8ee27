"""FrameReader (CFR by timestamp, downscaling, stills, early exit) and VideoWriter (exact length, audio, atomic)."""
from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from lipsync_core.media.audio import load_audio
from lipsync_core.media.probe import fps_fraction, probe
from lipsync_core.media.video import FrameReader, VideoWriter, count_frames, read_frames
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing import media as gen


def _white(frames: list[np.ndarray]) -> list[int]:
    return [i for i, f in enumerate(frames) if f.mean() > 128]


def _gradient(w: int, h: int, shift: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 3 + shift) % 256, (y * 4) % 256, (x + y) * 2 % 256], axis=-1).astype(np.uint8)


# --- reading -------------------------------------------------------------------------------------------------


def test_constant_rate_source_is_read_frame_for_frame(flash_clip):
    frames = read_frames(flash_clip)
    assert len(frames) == 75
    assert _white(frames) == [25]


def test_frame_k_shows_the_source_at_k_over_fps(flash_clip):
    # At 50 fps the 40 ms white source frame (1.00-1.04 s) covers output frames 50 and 51.
    frames = read_frames(flash_clip, fps=50)
    assert len(frames) == 150
    assert _white(frames) == [50, 51]


def test_variable_rate_source_becomes_constant_rate_at_its_average(vfr_clip):
    info = probe(vfr_clip)
    with FrameReader(vfr_clip) as reader:
        n = sum(1 for _ in reader)
        assert reader.fps == info.fps
    assert n == pytest.approx(info.duration * info.fps, abs=2)
    assert count_frames(vfr_clip) == n


def test_dropped_frames_are_repeated_at_the_nominal_rate(gen_dir):
    # 30 fps with every 3rd frame dropped, read back at 30 fps: the gaps become repeats of the previous frame.
    frames = read_frames(gen.vfr_video(gen_dir / "drops.mp4", fps=30, seconds=1.0, drop_every=3), fps=30)
    repeats = [k for k in range(1, len(frames)) if np.array_equal(frames[k], frames[k - 1])]
    assert len(frames) == pytest.approx(30, abs=1)
    assert len(repeats) == pytest.approx(10, abs=1)


def test_downscaled_reading_matches_a_resized_frame(talking_head):
    full = read_frames(talking_head, max_frames=1)[0]
    with FrameReader(talking_head, size=(80, 60), max_frames=1) as reader:
        small = next(iter(reader))
        assert reader.size == (80, 60)
    assert small.shape == (60, 80, 3)
    expected = cv2.resize(full, (80, 60), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - expected).mean() < 3


def test_still_image_yields_one_frame(gen_dir):
    path = gen.still_image(gen_dir / "still.for.reader.png", size=(90, 70))
    with FrameReader(path, fps=30) as reader:
        frames = list(reader)
        assert reader.fps == 30
    assert len(frames) == 1 and frames[0].shape == (70, 90, 3)


def test_batches_and_max_frames(talking_head):
    with FrameReader(talking_head, max_frames=40) as reader:
        sizes = [len(b) for b in reader.batches(16)]
    assert sizes == [16, 16, 8]


def test_frames_are_writable_arrays(talking_head):
    frame = read_frames(talking_head, max_frames=1)[0]
    frame[0, 0] = 0  # stages edit frames in place
    assert frame.flags.c_contiguous and frame.dtype == np.uint8


def test_leaving_early_stops_ffmpeg(talking_head):
    reader = FrameReader(talking_head)
    with reader:
        for i, _ in enumerate(reader):
            proc = reader._proc.proc
            if i == 2:
                break
    assert proc.poll() is not None  # reaped, not left running


def test_a_reader_is_iterated_once(talking_head):
    with FrameReader(talking_head, max_frames=2) as reader:
        list(reader)
        with pytest.raises(RuntimeError):
            list(reader)


def test_reading_an_audio_file_is_a_user_error(gen_dir):
    with pytest.raises(LipsyncError, match="no video stream"):
        FrameReader(gen.speech_wav(gen_dir / "no_video.wav", 0.3))


# --- writing -------------------------------------------------------------------------------------------------


def test_written_video_has_every_frame_the_rate_and_the_cut_audio(tmp_path, talking_head):
    out = tmp_path / "out.mp4"
    frames = read_frames(talking_head, max_frames=30)
    with VideoWriter(out, size=(160, 120), fps=25, audio=talking_head, audio_duration=1.2) as writer:
        for f in frames:
            writer.write(f)
    info = probe(out)
    assert (info.width, info.height, info.fps, info.has_audio) == (160, 120, 25.0, True)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert count_frames(out) == 30
    assert len(load_audio(out)) / 16000 == pytest.approx(1.2, abs=0.07)  # within one AAC frame (ffmpeg < 5 pads)


def test_video_only_duration_is_frames_over_fps(tmp_path):
    out = tmp_path / "silent.mp4"
    with VideoWriter(out, size=(64, 48), fps=10) as writer:
        for k in range(20):
            writer.write(_gradient(64, 48, k))
    info = probe(out)
    assert info.duration == pytest.approx(2.0, abs=0.01)
    assert not info.has_audio


def test_ntsc_rate_is_kept_exactly(tmp_path):
    out = tmp_path / "ntsc.mp4"
    with VideoWriter(out, size=(32, 32), fps=30000 / 1001) as writer:
        for k in range(10):
            writer.write(_gradient(32, 32, k))
    assert fps_fraction(probe(out).fps) == Fraction(30000, 1001)


def test_crf0_round_trip_is_nearly_lossless(tmp_path):
    out = tmp_path / "lossless.mp4"
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(0, 256, (48, 64, 1), dtype=np.uint8), 3, axis=2)
    smooth = _gradient(64, 48)
    with VideoWriter(out, size=(64, 48), fps=25, crf=0) as writer:
        writer.write(grey)
        writer.write(smooth)
    back_grey, back_smooth = read_frames(out)
    assert np.abs(back_grey.astype(int) - grey).max() <= 1  # lossless luma, limited-range rounding only
    diff = np.abs(back_smooth.astype(int) - smooth)
    assert diff.mean() < 0.6 and diff.max() <= 4  # plus 4:2:0 chroma


def test_odd_size_is_padded_to_even(tmp_path):
    out = tmp_path / "odd.mp4"
    frame = _gradient(63, 47)
    with VideoWriter(out, size=(63, 47), fps=25, crf=0) as writer:
        writer.write(frame)
    back = read_frames(out)[0]
    assert back.shape == (48, 64, 3)
    assert np.abs(back[:47, :63].astype(int) - frame).mean() < 1.0


def test_output_appears_only_on_successful_close(tmp_path):
    out = tmp_path / "result.mp4"
    writer = VideoWriter(out, size=(32, 32), fps=25)
    writer.write(_gradient(32, 32))
    assert not out.exists()
    assert writer.close() == out
    assert out.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.mp4"]


def test_exception_inside_the_writer_leaves_nothing(tmp_path):
    with pytest.raises(KeyError):
        with VideoWriter(tmp_path / "result.mp4", size=(32, 32), fps=25) as writer:
            writer.write(_gradient(32, 32))
            raise KeyError("pipeline failed")
    assert list(tmp_path.iterdir()) == []


def test_abort_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "result.mp4", size=(32, 32), fps=25)
    for k in range(5):
        writer.write(_gradient(32, 32, k))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error_and_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "empty.mp4", size=(32, 32), fps=25)
    with pytest.raises(LipsyncError, match="no frames"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_rejected(tmp_path):
    with VideoWriter(tmp_path / "x.mp4", size=(32, 32), fps=25) as writer:
        with pytest.raises(ValueError, match=r"\(32, 32, 3\) uint8"):
            writer.write(np.zeros((32, 33, 3), np.uint8))
        writer.write(np.zeros((32, 32, 3), np.uint8))


def test_audio_without_sound_is_a_user_error(tmp_path, gen_dir):
    silent = gen.vfr_video(gen_dir / "no_sound.mp4", seconds=0.3)
    with pytest.raises(LipsyncError, match="no audio stream"):
        VideoWriter(tmp_path / "x.mp4", size=(32, 32), fps=25, audio=silent)
    assert list(tmp_path.iterdir()) == []


def test_encoder_failure_is_reported_and_leaves_nothing(tmp_path):
    writer = VideoWriter(tmp_path / "x.mp4", size=(32, 32), fps=25, preset="no-such-preset")
    with pytest.raises(LipsyncError, match=r"^could not encode .*x\.mp4: .*preset"):
        for _ in range(200):  # ffmpeg exits at once; a write() or close() reports it
            writer.write(np.zeros((32, 32, 3), np.uint8))
        writer.close()
    writer.abort()
    assert list(tmp_path.iterdir()) == []
