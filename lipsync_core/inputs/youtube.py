"""YouTube URL normalisation and downloads through yt-dlp (YouTube and every page yt-dlp's extractors read).

yt-dlp is used through its Python API with the ffmpeg that :func:`lipsync_core.media.ffmpeg.ffmpeg_exe`
resolves. Its errors are translated into one-line :class:`LipsyncError` messages that say what to do.
"""
from __future__ import annotations

import contextvars
import logging
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..support.errors import LipsyncError

log = logging.getLogger(__name__)

_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_SHORT_HOSTS = frozenset({"youtu.be", "www.youtu.be"})
_LONG_HOST = re.compile(r"^(?:[\w-]+\.)*(?:youtube|youtube-nocookie)\.com$")
# Paths whose next segment is the video ID: /shorts/ID, /embed/ID, /live/ID, /v/ID, /e/ID.
_ID_PATHS = frozenset({"shorts", "embed", "live", "v", "e"})

#: A (start, end) section to download; end None means "to the end".
Section = tuple[float, float | None]


def youtube_video_id(url: str) -> str | None:
    """The 11-character video ID of a YouTube URL, or None when ``url`` is not on a YouTube host.

    Accepts ``watch?v=``, ``youtu.be/``, ``shorts/``, ``embed/``, ``live/`` and ``v/`` forms on
    www/m/music.youtube.com and youtube-nocookie.com, with or without a scheme; ``t=``, ``list=``,
    ``index=`` and other parameters are ignored. Raises :class:`LipsyncError` for a YouTube URL that
    names no single video (a playlist, a channel, a malformed ID).
    """
    parts = urlsplit(url.strip() if "://" in url else "https://" + url.strip())
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if host in _SHORT_HOSTS:
        candidate = segments[0] if segments else None
    elif _LONG_HOST.match(host):
        if segments[:1] == ["watch"]:
            candidate = next(iter(parse_qs(parts.query).get("v", [])), None)
        elif len(segments) >= 2 and segments[0] in _ID_PATHS:
            candidate = segments[1]
        elif "list" in parse_qs(parts.query):
            raise LipsyncError(f"{url} is a playlist; give the URL of one video (https://www.youtube.com/watch?v=...)")
        else:
            candidate = None
    else:
        return None
    if candidate is None or not _VIDEO_ID.match(candidate):
        raise LipsyncError(f"{url} is not the URL of a YouTube video; expected https://www.youtube.com/watch?v=<id> "
                           "or https://youtu.be/<id>")
    return candidate


def canonical_youtube_url(url: str) -> str | None:
    """``https://www.youtube.com/watch?v=<id>`` for any YouTube video URL; None for other hosts."""
    video_id = youtube_video_id(url)
    return None if video_id is None else f"https://www.youtube.com/watch?v={video_id}"


class UnexplainedDownloadError(LipsyncError):
    """yt-dlp failed for a reason it does not put on the source (e.g. ffmpeg could not cut a section
    from a server without byte ranges); downloading the whole file instead may still work."""


# yt-dlp's error text -> what the user should do. First match wins; matched case-insensitively.
_REASONS: tuple[tuple[str, str], ...] = (
    (r"private video",
     "the video is private; if your account can watch it, pass a cookies.txt exported from your browser (--cookies)"),
    (r"confirm your age|age[- ]restricted|inappropriate for some users",
     "the video is age-restricted; pass a cookies.txt of a signed-in account (--cookies)"),
    (r"not a bot|sign in to confirm",
     "the site asks to sign in; pass a cookies.txt exported from a signed-in browser (--cookies)"),
    (r"members[- ]only|join this channel",
     "the video is for channel members only; pass a cookies.txt of a member account (--cookies)"),
    (r"video unavailable|has been removed|no longer available|does not exist|account .* terminated"
     r"|available in your country|geo.?restrict",
     "the video is unavailable (removed, private or blocked where you are); check the URL in a browser"),
    (r"unsupported url|is not a valid url",
     "not a supported URL; give a YouTube or other video page, a direct link to a media file, "
     "a Google Drive link or a local path"),
    (r"netscape format|cookies? ?file|load cookies",
     "the cookies file could not be read; export it in Netscape cookies.txt format"),
    (r"http error 404|not found \(404\)",
     "nothing there (HTTP 404); check the URL"),
    (r"http error 40[13]",
     "access denied (HTTP 401/403); the file may be private or need sign-in (--cookies)"),
    (r"http error 429|too many requests",
     "the site is rate-limiting downloads (HTTP 429); wait a while or pass a cookies.txt (--cookies)"),
    (r"http error 5\d\d",
     "the server failed (HTTP 5xx); try again later"),
    (r"failed to resolve|name or service not known|temporary failure in name resolution|getaddrinfo"
     r"|nodename nor servname|connection refused|network is unreachable|no route to host|timed? ?out"
     r"|connection reset|remote end closed",
     "no network connection, or the server is unreachable; check the connection and the URL"),
    (r"requested format is not available|no video formats",
     "the page offers no downloadable video or audio"),
)


def explain_ytdlp_error(message: str) -> str | None:
    """What a yt-dlp error message means for the user, or None when it names no known cause."""
    for pattern, reason in _REASONS:
        if re.search(pattern, message, re.IGNORECASE):
            return reason
    return None


def _one_line(message: str) -> str:
    text = re.sub(r"^ERROR:\s*", "", message.strip())
    text = re.sub(r"\s*\(caused by .*$", "", text, flags=re.S)
    return " ".join(text.split())


class _Logger:
    """Routes yt-dlp's console output to logging (warnings at info level); its errors come back as exceptions."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    info = debug
    error = debug


def download(url: str, dest_dir: Path, *, audio_only: bool = False, cookies: Path | None = None,
             section: Callable[[float | None], Section | None] | None = None,
             encoder_options: Sequence[str] = ()) -> Path | None:
    """Download the media at ``url`` into ``dest_dir`` with yt-dlp; returns the file, or None if nothing was fetched.

    Video+audio comes as mp4 (H.264/AAC preferred, at most 1080p); ``audio_only`` takes the best audio
    (or the best combined format where there is none). ``section`` is called with the duration yt-dlp
    reports (None if unknown) and returns the (start, end) to fetch, or None for everything; sections
    are re-encoded from the requested time (``encoder_options`` such as ``-preset``/``-crf`` are passed
    to the ffmpeg that does it; they are ignored where it only copies). ``cookies`` (a cookies.txt)
    is copied first because yt-dlp writes the cookie jar back on exit. Raises :class:`LipsyncError` for
    a cause the source names (private, removed, HTTP error, no network, unsupported URL) and
    :class:`UnexplainedDownloadError` for anything else.
    """
    import yt_dlp
    from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

    from ..media.ffmpeg import ffmpeg_exe

    ffmpeg = ffmpeg_exe()
    opts: dict = {
        "outtmpl": str(dest_dir / "media.%(ext)s"),
        "ffmpeg_location": ffmpeg,
        "format": "ba/b" if audio_only else "bv*+ba/b",
        "format_sort": ["acodec:aac"] if audio_only else ["res:1080", "vcodec:h264", "acodec:aac"],
        "merge_output_format": "mp4",
        "noplaylist": True,
        "playlist_items": "1",  # a page with several videos: its first one
        "logger": _Logger(),
        "quiet": True,  # also silences the ffmpeg that yt-dlp runs for sections
        "noprogress": True,
        "cachedir": False,
        "socket_timeout": 30,
        "retries": 3,
        "overwrites": True,
        "download_ranges": _ranges(section),
        "force_keyframes_at_cuts": True,
        "external_downloader_args": {"ffmpeg_o": list(encoder_options)},
    }
    if cookies is not None:
        if not Path(cookies).is_file():
            raise LipsyncError(f"cookies file not found: {cookies}")
        opts["cookiefile"] = str(shutil.copyfile(cookies, dest_dir / "cookies.txt"))

    def run() -> dict:
        # yt-dlp decides whether it can cut sections by asking FFmpegPostProcessor without its options;
        # the command line sets this context variable, so the API has to as well (inside a copied context).
        location = getattr(FFmpegPostProcessor, "_ffmpeg_location", None)
        if isinstance(location, contextvars.ContextVar):
            location.set(ffmpeg)
        with yt_dlp.YoutubeDL(opts) as ydl:
            return ydl.extract_info(url, download=True)

    try:
        info = contextvars.copy_context().run(run)
    except yt_dlp.utils.YoutubeDLError as e:
        detail = _one_line(str(e))
        reason = explain_ytdlp_error(str(e))
        if reason is not None:
            raise LipsyncError(f"cannot download {url}: {reason}") from e
        raise UnexplainedDownloadError(f"cannot download {url}: {detail}") from e
    video = next(iter(info.get("entries") or []), None) if info.get("_type") == "playlist" else info
    files = [Path(d["filepath"]) for d in (video or {}).get("requested_downloads") or [] if d.get("filepath")]
    return next((f for f in files if f.is_file()), None)


def _ranges(section: Callable[[float | None], Section | None] | None) -> Callable[[dict, object], list[dict]]:
    """yt-dlp's ``download_ranges`` callback: one section, or ``{}`` for the whole file."""

    def ranges(info: dict, _ydl) -> list[dict]:
        chosen = section(info.get("duration")) if section is not None else None
        if chosen is None:
            return [{}]
        start, end = chosen
        return [{"start_time": start, "end_time": float("inf") if end is None else end}]

    return ranges
