"""Audio for Wav2Lip: decoding through ffmpeg, the original's mel spectrogram, and per-frame mel windows;
and SyncNet's MFCCs (:func:`mfcc`, ``python_speech_features`` conventions) for the sync scorer.

The mel follows the original ``audio.melspectrogram`` (16 kHz, pre-emphasis 0.97, |STFT| with n_fft 800,
hop 200, Hann window 800, centred with reflect padding, 80 Slaney mel bands 55-7600 Hz,
``20·log10(max(1e-5, x)) - 20`` dB, normalised to [-4, 4]): 80 mel frames per second.

Everything is numpy: the STFT is an FFT over strided frames in float64, in blocks so an hour of audio needs
only a small working set, and the mel filter bank is built from its formula. It reproduces the reference mel
exactly without librosa, whose numba compile and import are slow (``docs/notes.md``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .ffmpeg import ffmpeg_exe, run_ffmpeg
from .probe import probe

SAMPLE_RATE = 16000
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS = 4.0
MEL_FPS = SAMPLE_RATE / HOP  # 80 mel frames per second of audio
MEL_STEP = 16  # mel frames per video frame window (0.2 s)
#: The normalised mel value of silence (and of anything quieter than -100 dB).
MEL_SILENCE = -MAX_ABS

_BLOCK_FRAMES = 4096  # STFT frames per block (about 51 s of audio, ~26 MB of float64 work arrays)


def load_audio(path: str | os.PathLike, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of any file ffmpeg reads to mono float32 at ``sr`` Hz.

    Channels are averaged (as librosa's ``to_mono``); resampling uses soxr when ffmpeg has it (as librosa's
    default), else ffmpeg's own resampler. Raises :class:`LipsyncError` if the file has no audio stream.
    """
    info = probe(path).require_audio()
    channels = info.channels or 2  # unknown layout: let ffmpeg mix to 2, then average
    resample = f"aresample={sr}" + (":resampler=soxr:precision=28" if _has_soxr(ffmpeg_exe()) else "")
    proc = run_ffmpeg(["-i", info.path, "-map", "0:a:0", "-vn", "-sn", "-af", resample, "-ac", str(channels),
                       "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
                      what=f"decode the audio of {info.path}", capture_stdout=True)
    samples = np.frombuffer(proc.stdout, np.float32)
    samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
    return samples.mean(axis=1, dtype=np.float32) if channels > 1 else samples[:, 0].copy()


@lru_cache(maxsize=4)
def _has_soxr(exe: str) -> bool:
    """Whether the ffmpeg at ``exe`` (the cache key; run_ffmpeg resolves the same one) was built with soxr."""
    proc = run_ffmpeg(["-buildconf"], what="read ffmpeg's build configuration", loglevel=None,
                      capture_stdout=True, check=False)
    return b"--enable-libsoxr" in proc.stdout + proc.stderr


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds of a file with audio, from its header (10 ms resolution; ``len(wav) / sr`` is exact)."""
    return probe(path).require_audio().duration


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """The (80, 401) float32 Slaney mel filter bank (librosa's ``filters.mel`` defaults); built once per process.

    Triangles between consecutive points evenly spaced on the Slaney mel scale, each scaled to unit area
    (``2 / bandwidth``). Computed here so neither librosa nor its numba import is on the runtime path.
    """
    fft_hz = np.linspace(0.0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    weights = np.empty((N_MELS, len(fft_hz)), np.float32)  # float32 rows, as librosa fills them
    for m in range(N_MELS):
        rising, falling = -ramps[m] / widths[m], ramps[m + 2] / widths[m + 1]
        weights[m] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    weights.flags.writeable = False  # shared by every caller
    return weights


# Slaney's mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic (27 mels per factor 6.4) above.
_MEL_LINEAR_HZ = 200.0 / 3
_MEL_BREAK_HZ = 1000.0
_MEL_BREAK = _MEL_BREAK_HZ / _MEL_LINEAR_HZ
_MEL_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz < _MEL_BREAK_HZ:
        return hz / _MEL_LINEAR_HZ
    return _MEL_BREAK + math.log(hz / _MEL_BREAK_HZ) / _MEL_LOG_STEP


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel < _MEL_BREAK, mel * _MEL_LINEAR_HZ,
                    _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mel - _MEL_BREAK)))


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    n = np.arange(WIN)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN)  # periodic Hann, as scipy/librosa "hann" with fftbins


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """The original Wav2Lip mel spectrogram of a 16 kHz mono signal: ``(80, 1 + len(wav) // 200)`` float32.

    Non-finite samples (NaN/inf, e.g. from a broken TTS track) are treated as silence, so the result never
    contains NaN; an empty signal gives one frame of silence. Works block by block (float64 inside), so
    memory beyond the input and the result stays a few tens of MB for any length.
    """
    x = np.asarray(wav).reshape(-1)
    sanitize = not np.isfinite(x).all()
    n_frames = 1 + len(x) // HOP
    out = np.empty((N_MELS, n_frames), np.float32)
    for start in range(0, n_frames, _BLOCK_FRAMES):
        stop = min(n_frames, start + _BLOCK_FRAMES)
        # Samples [lo, hi) of the centred (reflect-padded by n_fft/2) signal cover frames [start, stop).
        seg = _preemphasized(x, start * HOP - N_FFT // 2, (stop - 1) * HOP + N_FFT // 2, sanitize)
        frames = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP]
        magnitude = np.abs(np.fft.rfft(frames * _window(), axis=1))  # (frames, 401)
        out[:, start:stop] = _normalize(mel_basis() @ magnitude.T)
    return out


def _preemphasized(x: np.ndarray, lo: int, hi: int, sanitize: bool) -> np.ndarray:
    """``y[lo:hi]`` in float64 for ``y = preemphasis(x)`` with indices outside ``[0, len(x))`` reflected."""
    n = len(x)
    if n == 0:
        return np.zeros(hi - lo)
    if lo >= 1 and hi <= n:  # interior block: a plain slice (plus the sample before it)
        cur = x[lo - 1:hi].astype(np.float64)
        if sanitize:
            cur[~np.isfinite(cur)] = 0.0
        return cur[1:] - PREEMPHASIS * cur[:-1]
    idx = _reflect_index(np.arange(lo, hi), n)
    cur, prev = x[idx].astype(np.float64), x[np.maximum(idx - 1, 0)].astype(np.float64)
    if sanitize:
        cur[~np.isfinite(cur)] = 0.0
        prev[~np.isfinite(prev)] = 0.0
    return np.where(idx > 0, cur - PREEMPHASIS * prev, cur)  # y[0] = x[0]


def _reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map indices outside [0, n) by mirror reflection without repeating the edge (numpy's "reflect")."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.abs(idx) % period
    return np.where(idx >= n, period - idx, idx)


def _normalize(mel: np.ndarray) -> np.ndarray:
    db = 20.0 * np.log10(np.maximum(10.0 ** (MIN_LEVEL_DB / 20.0), mel)) - REF_LEVEL_DB
    return np.clip(2 * MAX_ABS * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS, -MAX_ABS, MAX_ABS)


def window_start(i: int | np.ndarray, fps: float, offset_ms: float = 0.0) -> np.ndarray:
    """First mel frame of video frame ``i``'s window: ``int(i * (80 / fps) + offset_ms * 80 / 1000)``.

    For offset 0 this is the original's float expression (``int(i * mel_idx_multiplier)``) bit for bit.
    ``int`` truncates toward zero, as the original; negative starts (an early offset) are floored instead.
    """
    pos = np.asarray(i, dtype=np.float64) * (MEL_FPS / fps) + offset_ms * (MEL_FPS / 1000.0)
    return np.where(pos >= 0, np.trunc(pos), np.floor(pos)).astype(np.int64)


def mel_windows(mel: np.ndarray, fps: float, indices: Sequence[int] | np.ndarray,
                offset_ms: float = 0.0, quiet: np.ndarray | None = None) -> np.ndarray:
    """The ``(len(indices), 80, 16)`` float32 mel windows of the given video frame numbers.

    Parts of a window before the start or past the end of ``mel`` read as silence (:data:`MEL_SILENCE`),
    so the video may cover the whole audio. With ``quiet`` (one flag per mel frame, :func:`quiet_frames`),
    a window whose every frame is quiet becomes the digital-silence window (the silence gate). Use this per
    batch; it never builds all windows.
    """
    starts = window_start(np.asarray(indices, dtype=np.int64), fps, offset_ms)
    cols = starts[:, None] + np.arange(MEL_STEP)  # (B, 16)
    inside = (cols >= 0) & (cols < mel.shape[1])
    if quiet is not None:  # frames outside the audio are silence already, so they count as quiet
        gated = np.asarray(np.where(inside, quiet[np.clip(cols, 0, max(len(quiet) - 1, 0))] if len(quiet) else True,
                                    True).all(axis=1))
        inside &= ~gated[:, None]
    gathered = mel[:, np.clip(cols, 0, max(mel.shape[1] - 1, 0))] if mel.shape[1] else \
        np.full((mel.shape[0], *cols.shape), MEL_SILENCE, np.float32)  # (80, B, 16)
    windows = np.where(inside[None], gathered, np.float32(MEL_SILENCE))
    return np.ascontiguousarray(windows.transpose(1, 0, 2), dtype=np.float32)


def frame_levels_db(wav: np.ndarray) -> np.ndarray:
    """The RMS level in dBFS (full scale 1.0) of each mel frame's 800-sample analysis window (centred, as the
    STFT's; samples outside the signal count as zeros): ``(1 + len(wav) // 200,)`` float32, at least -200."""
    x = np.asarray(wav, dtype=np.float64).reshape(-1)
    x = np.where(np.isfinite(x), x, 0.0)
    energy = np.concatenate([[0.0], np.cumsum(x * x)])
    centres = np.arange(1 + len(x) // HOP) * HOP
    lo, hi = np.clip(centres - WIN // 2, 0, len(x)), np.clip(centres + WIN // 2, 0, len(x))
    mean_square = (energy[hi] - energy[lo]) / WIN
    return (10.0 * np.log10(np.maximum(mean_square, 1e-20))).astype(np.float32)


def quiet_frames(wav: np.ndarray, threshold_db: float) -> np.ndarray:
    """Per mel frame, whether its audio stays below ``threshold_db`` dBFS RMS (for :func:`mel_windows`'s gate)."""
    return frame_levels_db(wav) < threshold_db


def mel_chunks(mel: np.ndarray, fps: float, n_frames: int, offset_ms: float = 0.0) -> np.ndarray:
    """All windows for frames ``0 .. n_frames-1``: ``(n_frames, 80, 16)`` float32 (see :func:`mel_windows`).

    Windows 0 .. ``T*fps/80 - 16`` equal the original's ``mel[:, int(i*80/fps) : +16]``; the original's last,
    right-aligned window is not reproduced (later frames see trailing silence instead).
    """
    return mel_windows(mel, fps, np.arange(n_frames), offset_ms)


def frames_for_audio(n_samples: int, fps: float, sr: int = SAMPLE_RATE) -> int:
    """Video frames needed to cover ``n_samples`` of audio at ``fps`` (at least 1)."""
    return max(1, math.ceil(n_samples * fps / sr - 1e-9))


# ------------------------------------------------------------------------------------------------ SyncNet MFCC
# python_speech_features.mfcc with all defaults at 16 kHz, as SyncNet's evaluate calls it: 25 ms rectangular
# frames every 10 ms (no centring), pre-emphasis 0.97, |rfft(512)|^2 / 512, 26 HTK-mel triangles over 0-8 kHz,
# log, orthonormal DCT-II, 13 coefficients, lifter 22, and coefficient 0 replaced by the log frame energy.
MFCC_WIN = 400
MFCC_HOP = 160
MFCC_NFFT = 512
MFCC_FILTERS = 26
MFCC_CEPS = 13
MFCC_LIFTER = 22
MFCC_FPS = SAMPLE_RATE / MFCC_HOP  # 100 MFCC frames per second
_MFCC_BLOCK = 8192  # frames per block (~82 s of audio, ~34 MB of float64 work arrays)


def load_audio_int16(path: str | os.PathLike) -> np.ndarray:
    """The first audio stream as 16 kHz mono int16, decoded as SyncNet's pipeline does
    (``ffmpeg -ac 1 -acodec pcm_s16le -ar 16000``: ffmpeg's own downmix and resampler)."""
    info = probe(path).require_audio()
    proc = run_ffmpeg(["-i", info.path, "-map", "0:a:0", "-vn", "-sn", "-ac", "1", "-ar", str(SAMPLE_RATE),
                       "-acodec", "pcm_s16le", "-f", "s16le", "pipe:1"],
                      what=f"decode the audio of {info.path}", capture_stdout=True)
    return np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], np.int16).copy()


def mfcc_frames(n_samples: int) -> int:
    """Number of MFCC frames of ``n_samples``: ``1 + ceil((n - 400) / 160)``, at least 1."""
    return 1 if n_samples <= MFCC_WIN else 1 + -(-(n_samples - MFCC_WIN) // MFCC_HOP)


@lru_cache(maxsize=1)
def mfcc_filterbank() -> np.ndarray:
    """The (26, 257) float64 triangular filters of ``python_speech_features.get_filterbanks`` at 16 kHz."""
    mel_points = np.linspace(0.0, 2595.0 * np.log10(1.0 + (SAMPLE_RATE / 2) / 700.0), MFCC_FILTERS + 2)
    hz = 700.0 * (10.0 ** (mel_points / 2595.0) - 1.0)
    edges = np.floor((MFCC_NFFT + 1) * hz / SAMPLE_RATE).astype(np.int64)
    bank = np.zeros((MFCC_FILTERS, MFCC_NFFT // 2 + 1))
    for m in range(MFCC_FILTERS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        k = np.arange(lo, mid)
        bank[m, k] = (k - lo) / (mid - lo)
        k = np.arange(mid, hi)
        bank[m, k] = (hi - k) / (hi - mid)
    bank.flags.writeable = False
    return bank


@lru_cache(maxsize=1)
def _dct_lifter() -> np.ndarray:
    """(26, 13): orthonormal DCT-II rows 0..12 with the cepstral lifter folded in, applied as ``log_fbank @ M``."""
    n = MFCC_FILTERS
    k, m = np.arange(MFCC_CEPS)[:, None], np.arange(n)[None, :]
    dct = np.cos(np.pi * k * (2 * m + 1) / (2 * n)) * np.sqrt(2.0 / n)
    dct[0] /= np.sqrt(2.0)
    lift = 1.0 + (MFCC_LIFTER / 2.0) * np.sin(np.pi * np.arange(MFCC_CEPS) / MFCC_LIFTER)
    out = (dct * lift[:, None]).T
    out.flags.writeable = False
    return out


def mfcc(signal: np.ndarray) -> np.ndarray:
    """SyncNet's MFCC matrix of a 16 kHz mono signal: ``(13, mfcc_frames(len))`` float64, 100 columns per second.

    ``signal`` keeps its own scale: SyncNet feeds raw int16 sample values (only row 0, the log energy,
    depends on the scale). Computed block by block, so memory beyond the input and the result is bounded.
    """
    x = np.asarray(signal).reshape(-1)
    n, n_frames = len(x), mfcc_frames(len(x))
    eps = np.finfo(np.float64).eps
    out = np.empty((MFCC_CEPS, n_frames))
    for start in range(0, n_frames, _MFCC_BLOCK):
        stop = min(n_frames, start + _MFCC_BLOCK)
        lo, hi = start * MFCC_HOP, (stop - 1) * MFCC_HOP + MFCC_WIN
        seg = np.zeros(hi - lo)  # zero padding past the end, as framesig's
        cur = x[lo:min(hi, n)].astype(np.float64)
        seg[:len(cur)] = cur
        if len(cur):
            seg[1:len(cur)] -= PREEMPHASIS * cur[:-1]
            if lo > 0:
                seg[0] -= PREEMPHASIS * float(x[lo - 1])
        frames = np.lib.stride_tricks.sliding_window_view(seg, MFCC_WIN)[::MFCC_HOP]
        power = np.abs(np.fft.rfft(frames, MFCC_NFFT, axis=1)) ** 2 / MFCC_NFFT  # (frames, 257)
        energy = power.sum(axis=1)
        fbank = power @ mfcc_filterbank().T
        ceps = np.log(np.where(fbank == 0, eps, fbank)) @ _dct_lifter()
        ceps[:, 0] = np.log(np.where(energy == 0, eps, energy))
        out[:, start:stop] = ceps.T
    return out
