"""Times, trims, YouTube URL forms and yt-dlp error texts: pure functions, no network, no media."""
from __future__ import annotations

import math

import pytest

from lipsync_core.inputs.resolve import Trim
from lipsync_core.inputs.youtube import canonical_youtube_url, explain_ytdlp_error, youtube_video_id
from lipsync_core.support.errors import LipsyncError
from lipsync_core.support.times import parse_time


@pytest.mark.parametrize("value, seconds", [
    (12.5, 12.5), (7, 7.0), ("12.5", 12.5), ("0", 0.0), (".5", 0.5), ("1:02.5", 62.5), ("75:30", 4530.0),
    ("01:02:03.25", 3723.25), ("0:00:00", 0.0), (" 3 ", 3.0),
])
def test_times_in_seconds_or_clock_form(value, seconds):
    assert parse_time(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_time_is_none(value):
    assert parse_time(value) is None


@pytest.mark.parametrize("value", ["abc", "1:75", "1:60:00", "1:2:3:4", "1h", "-3", -1, math.nan, math.inf, True,
                                   "1,5"])
def test_bad_time_formats_are_one_line_errors(value):
    with pytest.raises(LipsyncError, match=r"bad .*(seconds|number)") as e:
        parse_time(value, name="start")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("start, end", [(5, 5), (5, 4), ("0:10", "0:09.5")])
def test_end_must_be_after_start(start, end):
    with pytest.raises(LipsyncError, match="must be after the start"):
        Trim.parse(start, end, role="face video")


def test_an_end_beyond_the_duration_is_dropped_with_a_warning(caplog):
    fitted = Trim(1.0, 30.0).fit(4.0, role="face video")
    assert fitted == Trim(1.0, None)
    assert "beyond its duration" in caplog.text


def test_a_start_beyond_the_duration_is_an_error():
    with pytest.raises(LipsyncError, match="at or beyond its duration"):
        Trim(5.0, 8.0).fit(4.0, role="face video")


def test_max_seconds_refuses_a_longer_window_but_not_a_shorter_one():
    with pytest.raises(LipsyncError, match="more than max_seconds=60"):
        Trim().fit(75.0, role="face video", max_seconds=60)
    assert Trim(10.0, 70.0).fit(75.0, role="face video", max_seconds=60) == Trim(10.0, 70.0)


def test_start_moves_back_onto_the_frame_on_screen():
    assert Trim(1.62, 3.0).on_frame(25) == Trim(1.6, 3.0)
    assert Trim(1.6, None).on_frame(25) == Trim(1.6, None)


VID = "dQw4w9WgXcQ"


@pytest.mark.parametrize("url", [
    f"https://www.youtube.com/watch?v={VID}",
    f"https://www.youtube.com/watch?v={VID}&t=42s",
    f"https://www.youtube.com/watch?v={VID}&list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG&index=3",
    f"https://www.youtube.com/watch?feature=share&v={VID}",
    f"http://youtube.com/watch?v={VID}",
    f"https://m.youtube.com/watch?v={VID}",
    f"https://music.youtube.com/watch?v={VID}&si=abc",
    f"https://youtu.be/{VID}",
    f"https://youtu.be/{VID}?si=xyz&t=12",
    f"https://www.youtube.com/shorts/{VID}",
    f"https://youtube.com/shorts/{VID}?feature=share",
    f"https://www.youtube.com/embed/{VID}?start=30",
    f"https://www.youtube-nocookie.com/embed/{VID}",
    f"https://www.youtube.com/live/{VID}",
    f"youtu.be/{VID}",
    f"www.youtube.com/watch?v={VID}",
])
def test_youtube_url_forms_name_one_video(url):
    assert youtube_video_id(url) == VID
    assert canonical_youtube_url(url) == f"https://www.youtube.com/watch?v={VID}"


@pytest.mark.parametrize("url", ["https://example.com/watch?v=" + VID, "https://vimeo.com/123", "face.mp4",
                                 "/content/drive/MyDrive/clip.mp4"])
def test_other_sources_are_not_youtube(url):
    assert youtube_video_id(url) is None


@pytest.mark.parametrize("url, message", [
    ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", "playlist"),
    ("https://www.youtube.com/@somechannel", "not the URL of a YouTube video"),
    ("https://www.youtube.com/watch?v=short", "not the URL of a YouTube video"),
    ("https://youtu.be/", "not the URL of a YouTube video"),
])
def test_youtube_urls_without_one_video_are_errors(url, message):
    with pytest.raises(LipsyncError, match=message):
        youtube_video_id(url)


@pytest.mark.parametrize("message, meaning", [
    ("ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access to this video", "private"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed by the uploader", "unavailable"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable. This video is no longer available because the YouTube "
     "account associated with this video has been terminated.", "unavailable"),
    ("ERROR: [youtube] abcdefghijk: Video unavailable", "unavailable"),
    ("ERROR: [youtube] abcdefghijk: Sign in to confirm your age. This video may be inappropriate for some users.",
     "age-restricted"),
    ("ERROR: [youtube] abcdefghijk: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or "
     "--cookies for the authentication.", "asks to sign in"),
    ("ERROR: [youtube] abcdefghijk: Join this channel to get access to members-only content like this video",
     "members only"),
    ("ERROR: [youtube] abcdefghijk: The uploader has not made this video available in your country", "unavailable"),
    ("ERROR: Unsupported URL: https://example.com/", "not a supported URL"),
    ("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found (caused by <HTTPError 404>)",
     "HTTP 404"),
    ("ERROR: [youtube] abcdefghijk: Unable to download API page: <urlopen error [Errno -3] Temporary failure in "
     "name resolution>", "no network"),
    ("ERROR: [youtube] abcdefghijk: Requested format is not available. Use --list-formats", "no downloadable"),
])
def test_ytdlp_errors_are_explained(message, meaning):
    assert meaning in explain_ytdlp_error(message)


def test_an_unknown_ytdlp_error_is_not_explained():
    assert explain_ytdlp_error("ERROR: ffmpeg exited with code 183") is None
