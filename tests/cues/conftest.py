"""Speech with known phone timing for the mouth-cue tests: espeak-ng through ../shared/tools/espeak_truth.py when
../shared is there, else the espeak-ng command line (no timing then)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SHARED

SENTENCE = "Peter bought a blue fish for my mother."


@dataclass(frozen=True)
class Speech:
    wav: Path
    text: str
    truth: dict | None  # espeak_truth.py's phone timing, when ../shared/tools is there


def make_speech(folder: Path, text: str = SENTENCE, voice: str = "en-us", rate: int = 150) -> Speech:
    """A WAV of ``text`` spoken by espeak-ng (and its truth JSON when the shared tool is available)."""
    wav, truth = folder / "speech.wav", folder / "speech.json"
    tool = SHARED / "tools" / "espeak_truth.py"
    if tool.is_file():
        subprocess.run([sys.executable, str(tool), text, str(wav), str(truth), "--voice", voice, "--rate", str(rate)],
                       check=True, capture_output=True)
        return Speech(wav, text, json.loads(truth.read_text()))
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng is needed for the mouth-cue tests: apt-get install espeak-ng")
    subprocess.run([exe, "-v", voice, "-s", str(rate), "-w", str(wav), text], check=True, capture_output=True)
    return Speech(wav, text, None)


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> Speech:
    return make_speech(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def silence(tmp_path_factory) -> Path:
    """Two seconds of digital silence, 44.1 kHz stereo (not the recogniser's rate or layout)."""
    path = tmp_path_factory.mktemp("silence") / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(b"\0" * 4 * 88200)
    return path
