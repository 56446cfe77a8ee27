"""probe(): stream layout from ``ffmpeg -i`` on real and generated media, and its user errors."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from lipsync_core.media.ffmpeg import run_ffmpeg
from lipsync_core.media.probe import fps_fraction, parse_ffmpeg_info, probe
from lipsync_core.support.errors import LipsyncError
from lipsync_core.testing import media as gen
from tests.conftest import shared_media, shared_path


def test_video_with_audio(talking_head):
    info = probe(talking_head)
    assert (info.width, info.height, info.fps) == (160, 120, 25.0)
    assert info.has_video and info.has_audio and not info.is_image
    assert (info.sample_rate, info.channels) == (16000, 1)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.video_codec == "h264" and info.audio_codec == "aac"


def test_real_talking_head():
    info = probe(shared_path("media", "talking_head_man_vrt2.mp4"))
    assert (info.width, info.height, info.fps) == (844, 844, 25.0)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(5.03, abs=0.03)


def test_vfr_reports_the_average_frame_rate(vfr_clip):
    info = probe(vfr_clip)
    # Real clip: 135 frames over 6.10 s (avg 22.13, nominal 30); generated: 40 frames over ~1.97 s (nominal 30).
    expected = 22.13 if vfr_clip.name == "talking_head_vfr_vrt1.mp4" else 20.3
    assert info.fps == pytest.approx(expected, abs=0.1)


def test_mp3_is_audio_only(gen_dir):
    path = shared_media("speech_vrt2_derived.mp3")
    if path is None:
        path = gen_dir / "speech.mp3"
        gen.speech_wav(gen_dir / "speech48k.wav", 1.0, sr=48000, channels=2)
        run_ffmpeg(["-y", "-i", gen_dir / "speech48k.wav", "-c:a", "libmp3lame", path], what="write mp3")
    info = probe(path)
    assert info.has_audio and not info.has_video
    assert (info.audio_codec, info.sample_rate, info.channels) == ("mp3", 48000, 2)
    assert info.fps is None and info.frame_size is None


def test_stereo_44k_wav(stereo_44k):
    info = probe(stereo_44k)
    assert (info.sample_rate, info.channels, info.has_video) == (44100, 2, False)


@pytest.mark.parametrize("name", ["face.png", "face.jpg", "my.face.v2.final.jpeg", "face.bmp"])
def test_still_images(gen_dir, name):
    info = probe(gen.still_image(gen_dir / name, size=(90, 70)))
    assert info.is_image and info.has_video and not info.has_audio
    assert info.frame_size == (90, 70)
    assert info.duration == 0.0


@pytest.mark.parametrize("name", ["still_real_face.png", "still_cartoon_face.jpg"])
def test_real_stills(name):
    assert probe(shared_path("media", name)).is_image


def test_missing_file(tmp_path):
    with pytest.raises(LipsyncError, match="file not found"):
        probe(tmp_path / "nope.mp4")


def test_not_a_media_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(LipsyncError, match="not a media file"):
        probe(text)


def test_require_video_and_audio(gen_dir, talking_head):
    wav = gen.speech_wav(gen_dir / "only_audio.wav", 0.5)
    assert probe(talking_head).require_video() is not None
    with pytest.raises(LipsyncError, match="no video stream"):
        probe(wav).require_video("face input")
    silent = gen.vfr_video(gen_dir / "silent.mp4", seconds=0.5)
    with pytest.raises(LipsyncError, match="no audio stream"):
        probe(silent).require_audio("audio input")


# ffmpeg 5.1 (Debian 12 apt) output for a phone clip rotated by 90 degrees, NTSC rate, 5.1 audio.
FFMPEG_51_ROTATED = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mov':
  Metadata:
    major_brand     : qt
    creation_time   : 2023-05-01T10:00:00.000000Z
  Duration: 00:01:02.50, start: 0.000000, bitrate: 17000 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), \
1920x1080, 16000 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1, fltp, 384 kb/s (default)
At least one output file must be specified
"""


def test_parses_ffmpeg_5_output_with_rotation():
    info = parse_ffmpeg_info(FFMPEG_51_ROTATED, Path("phone.mov"))
    assert info.duration == pytest.approx(62.5)
    assert (info.width, info.height, info.rotation) == (1920, 1080, 90)
    assert info.frame_size == (1080, 1920)  # ffmpeg autorotates decoded frames
    assert fps_fraction(info.fps) == Fraction(30000, 1001)
    assert (info.sample_rate, info.channels) == (48000, 6)


def test_fps_fraction_keeps_integer_and_ntsc_rates_exact():
    assert fps_fraction(25.0) == 25
    assert fps_fraction(30000 / 1001) == Fraction(30000, 1001)
    assert fps_fraction(22.13) == Fraction(2213, 100)


def test_a_file_is_probed_once_while_it_is_unchanged_and_again_when_it_changes(tmp_path, monkeypatch):
    from lipsync_core.media.ffmpeg import ffmpeg_exe

    calls = tmp_path / "calls"
    counting = tmp_path / "ffmpeg"
    counting.write_text(f'#!/bin/sh\necho x >> "{calls}"\nexec "{ffmpeg_exe()}" "$@"\n')
    counting.chmod(0o755)
    wav = gen.speech_wav(tmp_path / "take.wav", 0.5, sr=16000)
    other = gen.speech_wav(tmp_path / "other.wav", 0.5, sr=22050)
    monkeypatch.setenv("LIPSYNC_FFMPEG", str(counting))
    assert [probe(wav).sample_rate for _ in range(3)] == [16000] * 3
    assert calls.read_text().count("x") == 1
    other.replace(wav)  # the same name, another file
    assert probe(wav).sample_rate == 22050 and calls.read_text().count("x") == 2
