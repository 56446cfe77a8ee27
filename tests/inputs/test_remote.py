"""Remote sources on loopback only: plain media URLs, yt-dlp's generic extractor (with and without byte
ranges), Google Drive through the fake Drive, and the download errors."""
from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
from pathlib import Path

import pytest

from lipsync_core.inputs.resolve import resolve_inputs, resolve_media
from lipsync_core.media.probe import probe
from lipsync_core.support.errors import LipsyncError
from tests.inputs.clips import beep_onsets, flash_frames
from tests.inputs.conftest import FPS, MARK
from tests.support.fake_drive import DriveFile, fake_drive
from tests.support.google_route import route_drive
from tests.support.servers import static_server

FRAME = 1 / FPS
WHOLE_FILE_FALLBACK = "downloading the whole file"


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_one_line_error(call, match: str, workdir: Path) -> None:
    with pytest.raises(LipsyncError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
    assert list(workdir.iterdir()) == []


@pytest.fixture(params=[True, False], ids=["ranges", "no-ranges"])
def server(request, site):
    with static_server(site, ranges=request.param) as (base, log):
        yield base, log, request.param


# -- plain media URLs: fetched as files ------------------------------------------------------------------------------
def test_a_media_url_is_downloaded_as_it_is(server, site, workdir):
    base, log, _ = server
    out = resolve_media(f"{base}/real.mp4", workdir=workdir)
    assert out.parent == workdir and digest(out) == digest(site / "real.mp4")
    assert [path for _, path, _ in log] == ["/real.mp4"]  # no page parsing, one GET


def test_a_media_url_is_trimmed_after_download(server, workdir):
    base, _, _ = server
    out = resolve_media(f"{base}/flash.mp4", start=MARK - 0.4, end=MARK + 1, workdir=workdir)
    assert flash_frames(out) == [10]
    assert beep_onsets(out) == pytest.approx([0.4], abs=0.002)
    assert [p.name for p in workdir.iterdir()] == [out.name]  # the download itself is gone


# -- pages: yt-dlp's generic extractor -------------------------------------------------------------------------------
def test_a_page_with_a_video_is_downloaded_through_ytdlp(server, site, workdir):
    base, _, _ = server
    out = resolve_media(f"{base}/real_page", workdir=workdir)
    assert digest(out) == digest(site / "real.mp4")


def test_a_page_with_several_videos_gives_its_first(site, workdir):
    with static_server(site) as (base, log):
        out = resolve_media(f"{base}/two_videos_page", workdir=workdir)
    assert digest(out) == digest(site / "real.mp4")
    assert "/flash.mp4" not in [path for _, path, _ in log]


def test_a_page_section_is_frame_accurate_with_or_without_byte_ranges(server, workdir, caplog):
    base, log, ranges = server
    caplog.set_level(logging.INFO, logger="lipsync_core.inputs.resolve")
    out = resolve_media(f"{base}/flash_page", start=MARK - 0.4, end=MARK + 1, workdir=workdir)
    assert flash_frames(out) == [10]
    assert beep_onsets(out) == pytest.approx([0.4], abs=0.005)
    assert probe(out).duration == pytest.approx(1.4, abs=FRAME + 0.05)
    # With ranges only the section is fetched (ffmpeg seeks); without, yt-dlp's cut fails and the file is cut here.
    assert (WHOLE_FILE_FALLBACK in caplog.text) is not ranges
    assert any(rng not in (None, "bytes=0-") for _, _, rng in log) is ranges
    assert [p.name for p in workdir.iterdir()] == [out.name]


def test_a_page_section_as_audio(server, workdir):
    base, _, _ = server
    out = resolve_media(f"{base}/flash_page", kind="audio", start=MARK - 0.5, end=MARK + 0.5, workdir=workdir)
    assert probe(out).has_audio
    assert beep_onsets(out) == pytest.approx([0.5], abs=0.005)


def test_an_end_beyond_a_page_video_of_unknown_duration_is_clamped_with_a_warning(site, workdir, caplog):
    with static_server(site) as (base, _):
        out = resolve_media(f"{base}/flash_page", start=MARK, end=60, workdir=workdir)
    assert "beyond its duration" in caplog.text
    assert flash_frames(out) == [0]


def described_page(site: Path, base: str) -> str:
    """A page that states the video's duration (schema.org JSON-LD), as YouTube's metadata does."""
    name = f"described_{base.rsplit(':', 1)[1]}"
    (site / name).write_text(DESCRIBED.format(url=f"{base}/flash.mp4"))
    return f"{base}/{name}"


DESCRIBED = ('<!DOCTYPE html><html><head><title>clip</title><script type="application/ld+json">{{"@context": '
             '"https://schema.org", "@type": "VideoObject", "name": "clip", "contentUrl": "{url}", "duration": "PT4S", '
             '"uploadDate": "2024-01-01", "thumbnailUrl": "{url}.jpg"}}</script></head><body></body></html>')


def test_a_stated_duration_refuses_max_seconds_before_downloading(site, workdir):
    with static_server(site) as (base, log):
        assert_one_line_error(lambda: resolve_media(described_page(site, base), workdir=workdir, max_seconds=2),
                              "more than max_seconds=2", workdir)
    # Only the extractor's look at the link (headers), no download of the media.
    assert [path for _, path, _ in log].count("/flash.mp4") == 1


def test_a_stated_duration_clamps_the_section_before_downloading(site, workdir, caplog):
    caplog.set_level(logging.INFO, logger="lipsync_core.inputs.resolve")
    with static_server(site) as (base, _):
        out = resolve_media(described_page(site, base), start=MARK, end=60, workdir=workdir)
    assert caplog.text.count("beyond its duration") == 1 and WHOLE_FILE_FALLBACK not in caplog.text
    assert flash_frames(out) == [0]


def test_max_seconds_refuses_a_long_page_video(site, workdir):
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/flash_page", workdir=workdir, max_seconds=2),
                              "more than max_seconds=2", workdir)


def test_a_cookies_file_is_used_but_never_rewritten(site, workdir, tmp_path):
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tabc\n")
    before = cookies.read_bytes()
    with static_server(site) as (base, _):
        assert resolve_media(f"{base}/real_page", workdir=workdir, cookies=cookies).is_file()
    assert cookies.read_bytes() == before


def test_a_cookies_file_in_the_wrong_format_is_reported(site, workdir, tmp_path):
    cookies = tmp_path / "cookies.json"
    cookies.write_text('{"session": "abc"}\n')
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/real_page", workdir=workdir, cookies=cookies),
                              "Netscape cookies.txt format", workdir)


def test_a_missing_cookies_file_is_reported(site, workdir, tmp_path):
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/real_page", workdir=workdir,
                                                    cookies=tmp_path / "nope.txt"), "cookies file not found", workdir)


# -- Google Drive ----------------------------------------------------------------------------------------------------
DRIVE_ID = "1AbCdEfGhIjKlMnOpQrStUvWxYz012345"


def test_a_drive_share_link_is_downloaded_and_trimmed(clip, workdir, monkeypatch):
    files = {DRIVE_ID: DriveFile(clip.read_bytes(), name="talk.mp4", mode="confirm")}
    with fake_drive(files) as (base, _):
        route_drive(monkeypatch, base)
        face, audio = resolve_inputs(f"https://drive.google.com/file/d/{DRIVE_ID}/view?usp=sharing", DRIVE_ID,
                                     start=MARK, end=MARK + 1, workdir=workdir)
    assert flash_frames(face) == [0]
    assert digest(audio) == digest(clip)  # untrimmed: the download itself, moved into the workdir


def test_a_drive_file_that_is_not_shared_is_reported(clip, workdir, monkeypatch):
    with fake_drive({DRIVE_ID: DriveFile(clip.read_bytes(), mode="permission")}) as (base, _):
        route_drive(monkeypatch, base)
        assert_one_line_error(lambda: resolve_media(DRIVE_ID, workdir=workdir), "Google Drive", workdir)


# -- errors ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def forbidden():
    """A server that answers 403 to everything, like a private or removed video."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_removed_video_page_is_reported(site, workdir):
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/gone", start=1, workdir=workdir), "HTTP 404", workdir)


def test_a_private_video_page_is_reported(forbidden, workdir):
    assert_one_line_error(lambda: resolve_media(f"{forbidden}/watch/123", workdir=workdir),
                          r"access denied \(HTTP 401/403\)", workdir)


def test_a_page_without_a_video_is_an_unsupported_url(site, workdir):
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/text_page", workdir=workdir), "not a supported URL",
                              workdir)


def test_no_network_is_reported_for_pages(closed_port, workdir):
    assert_one_line_error(lambda: resolve_media(f"http://127.0.0.1:{closed_port}/watch?v=1", workdir=workdir),
                          "no network", workdir)


def test_no_network_is_reported_for_media_urls(closed_port, workdir):
    assert_one_line_error(lambda: resolve_media(f"http://127.0.0.1:{closed_port}/face.mp4", workdir=workdir),
                          "network error", workdir)


def test_a_missing_media_url_is_reported(site, workdir):
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/missing.mp4", workdir=workdir), "HTTP 404", workdir)


def test_a_media_url_that_is_not_media_is_reported(site, workdir):
    with static_server(site) as (base, _):
        assert_one_line_error(lambda: resolve_media(f"{base}/notes.mp4", workdir=workdir), "not a media file",
                              workdir)
