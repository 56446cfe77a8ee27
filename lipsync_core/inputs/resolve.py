"""Input acquisition: any face or audio source -> a local media file, trimmed when asked.

A source is a local path (never modified), a Google Drive file ID or share link, an http(s) URL of a
media file (downloaded as it is), a YouTube URL in any common form, or any other page yt-dlp can read.
Trims take seconds or ``[hh:]mm:ss(.ms)``; they re-encode from the requested instant, so the first
frame is the one at ``start`` and the audio is cut at the same instant. Every result is checked
(the right streams, at least one decodable frame or sample, the expected duration). Whatever a call
writes lives in ``workdir``; when the call fails, it removes what it wrote.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

from ..media.ffmpeg import run_ffmpeg
from ..media.probe import IMAGE_SUFFIXES, MediaInfo, probe
from ..support import files
from ..support.errors import LipsyncError
from ..support.times import TimeLike, parse_time
from ..weights import download
from . import youtube

log = logging.getLogger(__name__)

Kind = Literal["face", "audio"]

#: The audio source that means "the face video's own sound" (an empty value or None means the same).
SAME_AS_FACE = "same"

#: URL path suffixes fetched as plain files; any other http(s) URL goes through yt-dlp, whose generic
#: extractor also recognises direct media links by their content type.
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma"})
MEDIA_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg", ".ts", ".3gp"}
                           ) | AUDIO_SUFFIXES | IMAGE_SUFFIXES

_ROLE = {"face": "face video", "audio": "audio"}
# How far a trimmed or downloaded section may differ from the duration asked for, beyond one frame.
_DURATION_SLACK = 0.1
# H.264 settings for every re-encoded cut (here and in yt-dlp's section downloads): near-transparent, fast.
_X264 = ("-preset", "veryfast", "-crf", "18")


@dataclass(frozen=True)
class Trim:
    """A [start, end) window in seconds of a source; ``end`` None means "to the end"."""

    start: float = 0.0
    end: float | None = None

    @classmethod
    def parse(cls, start: TimeLike, end: TimeLike, *, role: str = "input") -> Trim:
        """Parse user times; raises :class:`LipsyncError` for a bad format or an end not after the start."""
        s = parse_time(start, name=f"{role} start") or 0.0
        e = parse_time(end, name=f"{role} end")
        if e is not None and e <= s:
            raise LipsyncError(f"{role}: the end ({e:g} s) must be after the start ({s:g} s)")
        return cls(s, e)

    @property
    def whole(self) -> bool:
        return self.start == 0 and self.end is None

    def length(self, duration: float | None = None) -> float | None:
        """Seconds this window spans in a source of ``duration`` seconds (None when unknown)."""
        end = self.end if self.end is not None else duration
        return None if end is None else end - self.start

    def on_frame(self, fps: float) -> Trim:
        """The start moved back onto the frame shown at that instant, so picture and sound start together."""
        return Trim(math.floor(self.start * fps + 1e-6) / fps, self.end)

    def fit(self, duration: float | None, *, role: str, max_seconds: float | None = None) -> Trim:
        """This window inside a source of ``duration`` seconds (None or 0: unknown).

        An end beyond the duration is dropped with a warning; a start at or beyond it, or a window longer
        than ``max_seconds``, raises :class:`LipsyncError`.
        """
        end = self.end
        if duration:
            if self.start >= duration:
                raise LipsyncError(f"{role}: the start ({self.start:g} s) is at or beyond its duration "
                                   f"({duration:.2f} s); give an earlier start")
            if end is not None and end > duration:
                log.warning("%s: the end (%g s) is beyond its duration (%.2f s); using it up to %.2f s",
                            role, end, duration, duration)
                end = None
        fitted = Trim(self.start, end)
        length = fitted.length(duration or None)
        if max_seconds is not None and length is not None and length > max_seconds + 1e-6:
            raise LipsyncError(f"{role} is {length:.1f} s long (after trimming), more than max_seconds="
                               f"{max_seconds:g}; choose a shorter start/end")
        return fitted


def resolve_media(source: str | os.PathLike, *, start: TimeLike = None, end: TimeLike = None, kind: Kind = "face",
                  workdir: str | os.PathLike | None = None, max_seconds: float | None = None,
                  cookies: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """A local, checked media file for ``source``, trimmed to [start, end) when given.

    ``kind`` "face" needs a video stream or a still image; "audio" needs an audio stream (a video
    file is fine: its sound is used). An untrimmed local file is returned as it is; downloads and
    trimmed copies (mp4 for faces, WAV for audio) go into ``workdir`` (default: a new temp folder,
    which the caller then owns). ``max_seconds`` refuses longer inputs; ``cookies`` is a cookies.txt
    for sites that ask for sign-in; ``progress`` False silences the download progress bars. Raises
    :class:`LipsyncError` with one line on any input problem.
    """
    if kind not in _ROLE:
        raise ValueError(f"kind must be 'face' or 'audio', got {kind!r}")
    want = _Want.make(source, kind, Trim.parse(start, end, role=_ROLE[kind]), need_audio=kind == "audio",
                      max_seconds=max_seconds, cookies=cookies, progress=progress)
    with _Workspace(workdir) as work:
        return _resolve(want, work)


def resolve_inputs(face: str | os.PathLike, audio: str | os.PathLike | None = SAME_AS_FACE, *,
                   start: TimeLike = None, end: TimeLike = None, audio_start: TimeLike = None,
                   audio_end: TimeLike = None, workdir: str | os.PathLike | None = None,
                   cookies: str | os.PathLike | None = None, max_seconds: float | None = None,
                   progress: bool = True) -> tuple[Path, Path]:
    """Resolve the face and audio sources of a run (see :func:`resolve_media`); returns (face, audio) paths.

    ``start``/``end`` trim the face, ``audio_start``/``audio_end`` the audio. An ``audio`` of
    :data:`SAME_AS_FACE` ("same"), "" or None uses the face video's own sound, with the face's trim.
    If the audio fails, the face file this call wrote is removed as well.
    """
    same = audio is None or (isinstance(audio, str) and audio.strip().lower() in ("", SAME_AS_FACE))
    face_want = _Want.make(face, "face", Trim.parse(start, end, role=_ROLE["face"]), need_audio=same,
                           max_seconds=max_seconds, cookies=cookies, progress=progress)
    audio_trim = Trim.parse(audio_start, audio_end, role=_ROLE["audio"])
    if same and not audio_trim.whole:
        raise LipsyncError("audio start/end need a separate audio source; with audio 'same' the face video's "
                           "start/end trim both")
    with _Workspace(workdir) as work:
        face_path = _resolve(face_want, work)
        if same or audio is None:  # (None is "same"; spelled out for the type checker)
            return face_path, face_path
        audio_want = _Want.make(audio, "audio", audio_trim, need_audio=True, max_seconds=max_seconds, cookies=cookies,
                                progress=progress)
        return face_path, _resolve(audio_want, work)


@dataclass(frozen=True)
class _Want:
    """One source to resolve and what the result must be."""

    origin: str  # the source as the user gave it (for messages)
    kind: Kind
    trim: Trim
    need_audio: bool
    max_seconds: float | None
    cookies: Path | None
    progress: bool = True

    @classmethod
    def make(cls, source: str | os.PathLike, kind: Kind, trim: Trim, *, need_audio: bool,
             max_seconds: float | None, cookies: str | os.PathLike | None, progress: bool = True) -> _Want:
        return cls(os.fspath(source), kind, trim, need_audio, max_seconds, Path(cookies) if cookies else None,
                   progress)

    @property
    def role(self) -> str:
        return _ROLE[self.kind]


# -- where a source lives ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    how: Literal["local", "drive", "url", "ytdlp"]
    where: str  # a path, a Drive file ID or a URL


def _classify(source: str | os.PathLike) -> _Source:
    text = os.fspath(source).strip()
    if not text:
        raise LipsyncError("no input given: pass a local path, a Google Drive link or ID, or a URL")
    local = Path(text).expanduser()
    if local.is_dir():
        raise LipsyncError(f"{text} is a folder; give a media file")
    if local.is_file():
        return _Source("local", str(local))
    file_id = download.drive_id(text)
    if file_id is not None:
        return _Source("drive", file_id)
    download.check_drive_link(text)
    watch_url = youtube.canonical_youtube_url(text)
    if watch_url is not None:
        return _Source("ytdlp", watch_url)
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        suffix = PurePosixPath(unquote(parts.path)).suffix.lower()
        return _Source("url" if suffix in MEDIA_SUFFIXES else "ytdlp", text)
    if "://" in text:
        raise LipsyncError(f"unsupported URL {text}: give an http(s) URL, a Google Drive link or ID, or a local path")
    raise LipsyncError(f"file not found: {text}")


# -- the workspace -------------------------------------------------------------------------------------------------
class _Workspace:
    """Where one resolution writes: results in ``root``, downloads in scratch folders that always go.

    On failure every result file it created is removed too, and ``root`` itself if it created it.
    """

    def __init__(self, root: str | os.PathLike | None) -> None:
        self._root = Path(root) if root is not None else None
        self._made_root = False
        self._scratch: list[Path] = []
        self._results: list[Path] = []

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root, self._made_root = files.make_temp_dir("inputs"), True
        elif not self._root.is_dir():
            self._root.mkdir(parents=True)
            self._made_root = True
        return self._root

    def scratch(self) -> Path:
        """A new empty folder for one download attempt."""
        path = Path(tempfile.mkdtemp(prefix=".download-", dir=self.root))
        self._scratch.append(path)
        return path

    def result(self, kind: Kind, suffix: str) -> Path:
        """A new, unique result path in ``root`` (``face-xxxx.mp4``)."""
        fd, name = tempfile.mkstemp(prefix=f"{kind}-", suffix=suffix, dir=self.root)
        os.close(fd)
        os.chmod(name, 0o644)  # mkstemp makes it private; results are ordinary files
        self._results.append(Path(name))
        return Path(name)

    def keep(self, path: Path, kind: Kind) -> Path:
        """Move a downloaded file out of its scratch folder into a result path."""
        out = self.result(kind, path.suffix.lower())
        os.replace(path, out)
        return out

    def __enter__(self) -> _Workspace:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for path in self._scratch:
            shutil.rmtree(path, ignore_errors=True)
        if exc_type is None:
            return
        for path in self._results:
            path.unlink(missing_ok=True)
        if self._made_root and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)


# -- resolution ----------------------------------------------------------------------------------------------------
def _resolve(want: _Want, work: _Workspace) -> Path:
    src = _classify(want.origin)
    if src.how == "local":
        return _finish(want, Path(src.where), work, owned=False)
    if src.how == "ytdlp":
        return _via_ytdlp(want, src.where, work)
    scratch = work.scratch()
    if src.how == "drive":
        try:
            path = download.fetch_gdrive(src.where, scratch / "media", progress=want.progress)
        except download.DownloadError as exc:
            if want.origin.strip() != src.where:
                raise
            raise LipsyncError(f"{want.origin.strip()}: no such local file, and Google Drive did not serve a file with "
                               f"that ID either ({exc.reason}); check the path or the ID") from None
    else:
        path = download.fetch_url(src.where, scratch / PurePosixPath(unquote(urlsplit(src.where).path)).name,
                                  progress=want.progress)
    return _finish(want, Path(path), work, owned=True)


def _finish(want: _Want, path: Path, work: _Workspace, *, owned: bool) -> Path:
    """Check a local file and trim it if needed; ``owned`` files (downloads) move into the workspace."""
    info = _check(want, path)
    if info.is_image:
        if not want.trim.whole:
            log.warning("%s is a still image; start/end do not apply to it", want.origin)
        return work.keep(path, want.kind) if owned else path
    fitted = want.trim.fit(info.duration or None, role=want.role, max_seconds=want.max_seconds)
    if want.kind == "face" and info.fps:
        fitted = fitted.on_frame(info.fps)
    if fitted.whole:
        return work.keep(path, want.kind) if owned else path
    out = work.result(want.kind, ".wav" if want.kind == "audio" else ".mp4")
    _cut(path, out, fitted, want.kind, with_audio=info.has_audio, origin=want.origin)
    _check(want, out, expected=fitted.length(info.duration or None))
    return out


def _via_ytdlp(want: _Want, url: str, work: _Workspace) -> Path:
    """Download with yt-dlp, only the needed section when the server allows it, else everything and cut here."""
    planned: list[tuple[Trim, float | None]] = []  # what plan() chose, and the duration yt-dlp reported

    def plan(duration: float | None) -> youtube.Section | None:
        # Runs once yt-dlp knows the duration (if the site tells): refuse early, clamp the end.
        fitted = want.trim.fit(duration, role=want.role, max_seconds=want.max_seconds)
        planned.append((fitted, duration))
        return None if fitted.whole else (fitted.start, fitted.end)

    def section() -> tuple[Trim, float | None] | None:
        return planned[-1] if planned and not planned[-1][0].whole else None

    audio_only = want.kind == "audio"
    try:
        got = youtube.download(url, work.scratch(), audio_only=audio_only, cookies=want.cookies, section=plan,
                               encoder_options=_X264)
    except youtube.UnexplainedDownloadError:
        if section() is None:
            raise
        got = None
    cut = section()
    if cut is not None:
        fitted, duration = cut
        if got is None:
            log.info("yt-dlp could not cut the section out of %s (the server may not support byte ranges); "
                     "downloading the whole file and trimming it here", want.origin)
        else:
            try:
                _check(want, got, expected=fitted.length(duration))
                return work.keep(got, want.kind)
            except LipsyncError as e:
                log.info("the section download is unusable (%s); downloading the whole file and trimming it here", e)
        got = youtube.download(url, work.scratch(), audio_only=audio_only, cookies=want.cookies)
    if got is None:
        raise LipsyncError(f"cannot download {url}: yt-dlp produced no file")
    return _finish(want, got, work, owned=True)


# -- checking and cutting ------------------------------------------------------------------------------------------
def _check(want: _Want, path: Path, expected: float | None = None) -> MediaInfo:
    """Probe ``path`` and insist on what ``want`` needs: streams, a decodable frame/sample, the expected duration."""
    info = probe(path)
    face = want.kind == "face"
    if face and not info.has_video:
        raise LipsyncError(f"{want.origin} has no video stream; the face must be a video or an image")
    if want.need_audio and not info.has_audio:
        raise LipsyncError(f"{want.origin} has no audio stream; give a file with sound"
                           + (" (with audio 'same', the face video must have sound)" if face else ""))
    if face and not _decodes(path, "v"):
        raise LipsyncError(f"{want.origin} has no video frame that can be decoded (empty or broken file)")
    if want.need_audio and not _decodes(path, "a"):
        raise LipsyncError(f"{want.origin} has no audio that can be decoded (empty or broken file)")
    if expected is not None:
        slack = _DURATION_SLACK + (1 / info.fps if info.has_video and info.fps else 0.0)
        if abs(info.duration - expected) > slack:
            raise LipsyncError(f"{want.origin} came out {info.duration:.2f} s long instead of {expected:.2f} s")
    return info


def _decodes(path: Path, stream: Literal["v", "a"]) -> bool:
    """Whether the first video frame / first audio samples of ``path`` decode to something."""
    out = ["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray"] if stream == "v" else \
        ["-frames:a", "1", "-f", "s16le", "-ac", "1"]
    proc = run_ffmpeg(["-i", path, "-map", f"0:{stream}:0", *out, "pipe:1"], what=f"decode {path}",
                      capture_stdout=True, check=False)
    return proc.returncode == 0 and len(proc.stdout) > 0


def _cut(src: Path, dest: Path, trim: Trim, kind: Kind, *, with_audio: bool, origin: str) -> None:
    """Re-encode [start, end) of ``src`` into ``dest``: H.264/AAC mp4 for faces, 16-bit WAV for audio.

    Seeking before ``-i`` while re-encoding is frame-accurate in ffmpeg: it decodes from the previous
    keyframe and drops everything before ``start`` in every stream, so sound and picture stay aligned.
    """
    args: list[str | os.PathLike] = ["-y"]
    if trim.start > 0:
        args += ["-ss", f"{trim.start:.6f}"]
    args += ["-i", src]
    if trim.end is not None:
        args += ["-t", f"{trim.end - trim.start:.6f}"]
    if kind == "audio":
        args += ["-map", "0:a:0", "-c:a", "pcm_s16le", "-f", "wav", dest]
    else:
        # libx264 with 4:2:0 needs even sizes: pad odd ones by a pixel rather than fail.
        args += ["-map", "0:v:0", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", *_X264,
                 "-pix_fmt", "yuv420p"]
        if with_audio:
            args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", "192k"]
        args += ["-movflags", "+faststart", "-f", "mp4", dest]
    run_ffmpeg(args, what=f"trim {origin}")
