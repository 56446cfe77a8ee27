"""The helpers behind the Colab/Jupyter notebooks: forms -> options, uploads, Drive, recording, preview, box helper.

A notebook builds one :class:`Job` cell by cell (``setup`` -> weights -> inputs -> settings -> optional
face box -> run; the 2D notebook: inputs -> transcript -> mouth chart -> run and cue files); each cell is a
Colab form plus one call. Everything runs in plain Jupyter too: the
Colab-only features (uploads, Drive, recording, the download button) are imported only when used
and say so in one line elsewhere. Expected errors are raised as :class:`NotebookError`, which a
notebook shows as its one-line message instead of a traceback.
"""
from __future__ import annotations

import base64
import functools
import importlib.util
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..face.types import Box
from ..support.errors import LipsyncError
from ..support.version import REPO_URL

F = TypeVar("F", bound=Callable[..., Any])

#: Where Colab mounts Google Drive; the user's files are under ``MyDrive``.
DRIVE_ROOT = Path("/content/drive")
#: Folders in the user's Drive for cached weights and copied results.
DRIVE_WEIGHTS_FOLDER = "lipsync_weights"
DRIVE_RESULTS_FOLDER = "lipsync_results"
#: Inline previews embed the video in the notebook; bigger results are only offered for download.
PREVIEW_MAX_BYTES = 20 * 2**20
#: The two Wav2Lip generators a notebook may choose between ("use the GAN model").
GENERATORS = {False: "wav2lip", True: "wav2lip_gan"}
#: Form fields that are not RunOptions fields under the same name.
_FORM_ONLY = ("pad_top", "pad_bottom", "pad_left", "pad_right", "super_resolution", "segmentation_mask",
              "use_gan_model")


class NotebookError(LipsyncError):
    """A :class:`LipsyncError` that IPython shows as its one-line message, without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for custom exception display
        return [f"\x1b[1;31mError:\x1b[0m {self}"]


def friendly(fn: F) -> F:
    """Re-raise the expected errors of ``fn`` as :class:`NotebookError` (one line in the notebook)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotebookError:
            raise
        except LipsyncError as exc:
            raise NotebookError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


# -- environment ---------------------------------------------------------------------------------------------------
def in_colab() -> bool:
    """Whether this kernel runs on Google Colab."""
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no "google" package at all
        return False


def _require_colab(what: str, instead: str) -> None:
    if not in_colab():
        raise LipsyncError(f"{what} works only on Google Colab; {instead}")


def colab_url(notebook: str, ref: str = "main") -> str:
    """The "Open in Colab" address of ``notebooks/<notebook>`` in the repository at ``ref``."""
    m = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", REPO_URL)
    if m is None:
        raise ValueError(f"REPO_URL {REPO_URL!r} is not a github.com repository URL")
    return f"https://colab.research.google.com/github/{m[1]}/{m[2]}/blob/{ref}/notebooks/{notebook}"


def gpu_report() -> str:
    """One line about the accelerator this kernel will use."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"GPU: {props.name} ({props.total_memory / 2**30:.0f} GB); lip-sync runs on it."
    return ("No GPU found: lip-sync will run on the CPU, which is slow (minutes per second of video with the HQ "
            "and CodeFormer enhancers). On Colab choose Runtime > Change runtime type > T4 GPU, then run this "
            "cell again.")


def setup(variant: str, workdir: str | os.PathLike = "lipsync") -> Job:
    """The setup cell: report the GPU and start a :class:`Job` for ``variant`` (files go under ``workdir``)."""
    from ..engine.catalog import CATALOG
    from ..support.version import __version__

    needs = gpu_report() if CATALOG.variant_weights(variant) else "It needs no GPU."
    print(f"lipsync_core {__version__}, variant {variant}. {needs}")
    return Job(variant, Path(workdir))


# -- Google Drive --------------------------------------------------------------------------------------------------
def mount_drive() -> Path:
    """Mount Google Drive (Colab asks for permission once) and return the ``MyDrive`` folder."""
    _require_colab("Google Drive", "give a local path instead")
    my_drive = DRIVE_ROOT / "MyDrive"
    if not my_drive.is_dir():
        from google.colab import drive

        drive.mount(str(DRIVE_ROOT))
    return my_drive


def _mount_if_in_drive(text: str) -> None:
    if text.strip().startswith(str(DRIVE_ROOT)):
        mount_drive()


@friendly
def save_to_drive(path: str | os.PathLike, folder: str = DRIVE_RESULTS_FOLDER) -> Path:
    """Copy ``path`` into ``MyDrive/<folder>`` and return the copy."""
    dest_dir = mount_drive() / folder
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / Path(path).name
    shutil.copy2(path, dest)
    print(f"Copied to your Google Drive: {dest}")
    return dest


# -- uploads and recording -----------------------------------------------------------------------------------------
def upload_file(dest_dir: str | os.PathLike, what: str) -> Path:
    """Ask the browser for one file (Colab) and save it in ``dest_dir``."""
    _require_colab("Uploading", f"give the {what} as a path next to the notebook, a URL or a Drive link")
    from google.colab import files

    print(f"Choose the {what}:")
    uploaded = files.upload()
    if len(uploaded) != 1:
        raise LipsyncError(f"choose exactly one file as the {what} ({len(uploaded)} were uploaded); "
                           "run the cell again")
    name, data = next(iter(uploaded.items()))
    dest = Path(dest_dir) / Path(name).name
    dest.parent.mkdir(parents=True, exist_ok=True)
    saved = Path(name)  # Colab has already written the upload to the working directory
    if saved.is_file() and saved.stat().st_size == len(data):
        shutil.move(saved, dest)
    else:
        dest.write_bytes(data)
    return dest


# Shown in the cell's output frame: a stop button; resolves to the recording as a data: URL.
_RECORD_JS = """
async function lipsyncRecord() {
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  const button = document.createElement('button');
  button.textContent = 'Stop recording';
  document.body.appendChild(button);
  recorder.start();
  await new Promise((resolve) => { button.onclick = resolve; });
  recorder.stop();
  await stopped;
  stream.getTracks().forEach((track) => track.stop());
  button.remove();
  const blob = new Blob(chunks, {type: recorder.mimeType});
  return await new Promise((resolve) => {
    const reader = new FileReader();
    reader.onloadend = () => resolve(reader.result);
    reader.readAsDataURL(blob);
  });
}
"""


def record_audio(dest_dir: str | os.PathLike) -> Path:
    """Record from the browser's microphone (Colab) until Stop is pressed; returns a WAV file."""
    _require_colab("Recording", "give the audio as a file path, URL or Drive link")
    from google.colab import output
    from IPython.display import Javascript, display

    from ..media.ffmpeg import run_ffmpeg

    print("Recording... press 'Stop recording' when you are done.")
    display(Javascript(_RECORD_JS))
    data_url: str = output.eval_js("lipsyncRecord()")
    if not data_url or "," not in data_url:
        raise LipsyncError("the browser returned no recording; allow microphone access and try again")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    raw = dest_dir / "recording.webm"
    raw.write_bytes(base64.b64decode(data_url.split(",", 1)[1]))
    wav = dest_dir / "recording.wav"
    run_ffmpeg(["-y", "-i", raw, "-c:a", "pcm_s16le", wav], what="convert the recording")
    raw.unlink()
    return wav


# -- forms -> options ----------------------------------------------------------------------------------------------
def weight_source(text: str, role: str) -> str | None:
    """A weights-form field -> a ``<role>_path`` option: None (the manifest default), a path, URL or Drive ID.

    Accepts a Drive file ID, a Drive share link (reduced to its ID), an http(s) URL or an existing file.
    """
    from ..weights.download import remote_source

    value = text.strip().strip("'\"")
    if not value:
        return None
    _mount_if_in_drive(value)
    local = Path(value).expanduser()
    if local.is_file():
        return str(local)
    source = remote_source(value)
    if source is None:
        raise LipsyncError(f"{role}: {value!r} is neither a Google Drive file ID or share link, a URL nor an "
                           "existing file; leave the field empty to use the default")
    return source.target


def settings_options(**form: Any) -> dict[str, Any]:
    """The settings form -> RunOptions options (pads, positive HQ switches and "0 = off" fields converted)."""
    opts = {k: v for k, v in form.items() if k not in _FORM_ONLY}
    pads = [form.get(f"pad_{side}") for side in ("top", "bottom", "left", "right")]
    if any(p is not None for p in pads):
        if any(p is None for p in pads):
            raise ValueError("give all four pad_* fields or none")
        opts["pads"] = tuple(int(p) for p in pads if p is not None)  # all four are given
    if "super_resolution" in form:
        opts["no_sr"] = not form["super_resolution"]
    if "segmentation_mask" in form:
        opts["no_segmentation"] = not form["segmentation_mask"]
    if opts.get("mask_lower_face") == 0:
        opts["mask_lower_face"] = None
    return opts


# -- the job -------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    """What the notebook's cells collect: weight sources, resolved inputs, settings, a fixed box, the result."""

    variant: str
    workdir: Path = Path("lipsync")
    weights: dict[str, str | None] = field(default_factory=dict)  # {"<role>_path": source or None}
    options: dict[str, Any] = field(default_factory=dict)  # RunOptions fields from the settings form
    use_gan_model: bool | None = None  # None: the variant's default generator
    overrides: dict[str, Any] = field(default_factory=dict)  # options no form shows; set them in a new cell
    cache_dir: str | None = None  # the weights and face-track cache (a Drive folder when asked)
    face: Path | None = None
    audio: Path | None = None
    box: Box | None = None
    keyframes: dict[float, Box] = field(default_factory=dict)  # seconds -> a box the run follows (--track_box)
    result: Path | None = None
    # Several audio sources for the one face (a folder, or sources separated by ";"): one video each, run as a
    # batch (resumable: its state file sits beside the outputs, in Drive when the weights are cached there).
    audios: list[str] = field(default_factory=list)
    audio_options: dict[str, Any] = field(default_factory=dict)  # audio trims and cookies for each of them
    results: list[Any] = field(default_factory=list)  # the batch's JobResults
    dialog_file: str | None = None  # the 2D notebook's transcript (--dialog_file)

    @friendly
    def set_weights(self, *, cache_in_drive: bool = False, **fields: str) -> None:
        """The weights form: ``<role>_path`` fields (empty = manifest default); optionally cache in Drive."""
        from ..engine.catalog import CATALOG

        roles = {**CATALOG.variant_weights(self.variant), **CATALOG.other_detector_weights(self.variant)}
        unknown = sorted(set(fields) - {f"{r}_path" for r in roles})
        if unknown:
            raise ValueError(f"no such weight field(s) for {self.variant}: {', '.join(unknown)}")
        self.weights = {name: weight_source(text, name.removesuffix("_path")) for name, text in fields.items()}
        self.cache_dir = None  # unticked after an earlier run: back to the local cache
        if cache_in_drive:
            folder = mount_drive() / DRIVE_WEIGHTS_FOLDER
            folder.mkdir(parents=True, exist_ok=True)
            self.cache_dir = str(folder)
        for name, source in self.weights.items():
            print(f"{name}: {source if source is not None else 'default (from the weights manifest)'}")
        if cache_in_drive:
            print(f"Weights are cached in {self.cache_dir}")

    @friendly
    def set_inputs(self, face: str = "", audio: str = "", *, start: Any = "", end: Any = "",
                   audio_start: Any = "", audio_end: Any = "", cookies: str = "") -> None:
        """The inputs form: resolve (upload, record, download, trim) the face and audio into local files.

        ``face``/``audio``: a path, URL, Drive link or YouTube URL; empty or "upload" uploads (Colab);
        audio "record" records in the browser (Colab) and "same" uses the face video's own sound. An audio
        folder, or several sources separated by ";", makes one video per audio (see :meth:`run`).
        """
        from ..inputs.resolve import resolve_inputs, resolve_media

        uploads = self.workdir / "uploads"
        face, audio, cookies = face.strip(), audio.strip(), cookies.strip()
        if face.lower() in ("", "upload"):
            face = str(upload_file(uploads, "face video or image"))
        if audio.lower() in ("", "upload"):
            audio = str(upload_file(uploads, "audio (any audio or video file)"))
        elif audio.lower() == "record":
            audio = str(record_audio(uploads))
        if cookies.lower() == "upload":
            cookies = str(upload_file(uploads, "cookies.txt"))
        for text in (face, *audio.split(";"), cookies):
            _mount_if_in_drive(text)
        self.box, self.keyframes = None, {}  # boxes drawn on other footage do not apply
        self.audios = _several(audio)
        if self.audios:
            self.face = resolve_media(face, start=start, end=end, kind="face", workdir=self.workdir / "inputs",
                                      cookies=cookies or None)
            self.audio = None
            self.audio_options = {"audio_start": str(audio_start).strip() or None,
                                  "audio_end": str(audio_end).strip() or None, "cookies": cookies or None}
            print(describe_media(self.face, "face"))
            print(f"{len(self.audios)} audio sources, one video each: "
                  + ", ".join(_output_stem(a, i) for i, a in enumerate(self.audios, 1)))
            return
        self.face, self.audio = resolve_inputs(
            face, audio, start=start, end=end, audio_start=audio_start, audio_end=audio_end,
            workdir=self.workdir / "inputs", cookies=cookies or None)
        print(describe_media(self.face, "face"))
        if self.audio != self.face:
            print(describe_media(self.audio, "audio"))

    @friendly
    def set_settings(self, **form: Any) -> None:
        """The settings form (see :func:`settings_options`); checked now so mistakes show in this cell."""
        from ..engine.plan import make_config

        options = settings_options(**form)
        make_config(self.variant, **{**options, **self.overrides})
        self.options = options
        if "use_gan_model" in form:
            self.use_gan_model = bool(form["use_gan_model"])

    def run_options(self) -> dict[str, Any]:
        """Every option of the run from the forms, as :func:`lipsync_core.lipsync` takes them.

        The "use the GAN model" box picks the generator by its manifest id; a checkpoint from the weights
        form wins over it.
        """
        chosen: dict[str, Any] = {k: v for k, v in (("box", self.box), ("cache_dir", self.cache_dir),
                                                    ("dialog_file", self.dialog_file)) if v is not None}
        if self.keyframes:
            chosen["track_box"] = tuple(f"{t} {b} {l} {r} @{at:g}"
                                        for at, (t, b, l, r) in sorted(self.keyframes.items()))
        options = {**self.weights, **self.options, **chosen, **self.overrides}
        if self.use_gan_model is not None and not options.get("checkpoint_path"):
            options["checkpoint_path"] = GENERATORS[self.use_gan_model]
        return options

    def _require_inputs(self) -> tuple[Path, Path]:
        if self.face is None or (self.audio is None and not self.audios):
            raise LipsyncError("no inputs yet: run the inputs cell first")
        return self.face, self.audio or self.face

    @friendly
    def run(self, *, copy_to_drive: bool = False, preview: bool = True, score: bool = False) -> Path | list[Path]:
        """Lip-sync the inputs with the current settings, then show the result (and copy it to Drive); with
        ``score``, measure its lip sync and show the scores and their per-second plot under the preview.

        With several audio sources: one video each, through the batch runner (:meth:`run_batch`)."""
        from ..job import lipsync

        face, audio = self._require_inputs()
        if self.audios:
            return self.run_batch(copy_to_drive=copy_to_drive, preview=preview, score=score)
        options = self.run_options()
        if score:
            options["score"] = True
        if options.get("checkpoint_path") in GENERATORS.values():
            print(f"Wav2Lip generator: {options['checkpoint_path']}")
        if self.box is not None:
            print(f"Using the fixed face box {self.box} (top, bottom, left, right) on every frame.")
        elif self.keyframes:
            print(f"Following the face box set on {len(self.keyframes)} keyframe(s) through the clip.")
        out = self.workdir / "results" / f"lipsync_{self.variant}_{time.strftime('%Y%m%d-%H%M%S')}.mp4"
        started = time.perf_counter()
        self.result = lipsync(face, audio, out, variant=self.variant, **options)
        print(f"Done in {time.perf_counter() - started:.0f} s: {self.result}")
        if preview:
            show_result(self.result)
        if score:
            from ..score.session import report_path

            show_scores(report_path(self.result))
        if copy_to_drive:
            save_to_drive(self.result)
        return self.result

    def batch_folder(self) -> Path:
        """Where a batch's videos and its state file go: a Drive folder when the weights are cached in Drive
        (so a new Colab session resumes where the last one stopped), else under the work folder."""
        face, _ = self._require_inputs()
        name = f"{face.stem}_{self.variant}"
        if self.cache_dir is not None:
            return mount_drive() / DRIVE_RESULTS_FOLDER / name
        return self.workdir / "results" / name

    @friendly
    def run_batch(self, *, copy_to_drive: bool = False, preview: bool = True, score: bool = False) -> list[Path]:
        """One video per audio source, resumable: videos made by an earlier (interrupted) run are kept.
        Prints a line per job, then a results table and a preview of each video; ``score`` writes each video's
        lip-sync report beside it."""
        from .. import batch

        face, _ = self._require_inputs()
        folder = self.batch_folder()
        jobs = [{"face": str(face), "audio": a, "outfile": str(folder / f"{_output_stem(a, i)}.mp4")}
                for i, a in enumerate(self.audios, 1)]
        defaults = {k: v for k, v in {**self.run_options(), **self.audio_options}.items() if v is not None}
        defaults["variant"] = self.variant  # a row without one runs the original
        if score:
            defaults["score"] = True
        print(f"{len(jobs)} videos into {folder}")
        ended: list[int] = []

        def progress(e: batch.BatchEvent) -> None:
            if e.result is not None:
                r = e.result
                ended.append(e.index)
                took = f" in {r.seconds:.0f} s" if r.status == "done" and r.seconds is not None else ""
                what = r.error if r.status == "failed" else Path(r.outfile).name
                print(f"[{len(ended)}/{e.total}] {r.status}{took}: {what}")

        try:
            self.results = batch.run_batch(jobs, state=folder / "lipsync-batch.state.json", defaults=defaults,
                                           on_event=progress)
        except batch.BatchInterrupted as stop:
            self.results = stop.results
            print("Interrupted: finished videos are kept; run this cell again to make the rest.")
        show_results(self.results, preview=preview)
        made = [Path(r.outfile) for r in self.results if r.status in ("done", "skipped")]
        if copy_to_drive and self.cache_dir is None:
            for path in made:
                save_to_drive(path)
        return made

    @friendly
    def preview_track(self, frames: int = 4) -> Any:
        """The box set on keyframes (the helper's "follow" switch) followed through the clip, drawn on ``frames``
        frames spread over it (red where the tracker is unsure), with the unsure time ranges; before the run."""
        import cv2
        import numpy as np
        from IPython.display import Image, display

        from ..engine.plan import Plan, make_config
        from ..engine.session import Session
        from ..engine.track import follow_box

        face, _ = self._require_inputs()
        cfg = make_config(self.variant, **self.run_options())
        if not cfg.keyframed:
            raise LipsyncError("no keyframe yet: open the face box helper, place the box and tick 'follow'")
        session = Session(Plan.from_options(cfg))
        video = session.open_video(face)
        result = follow_box(session, video.frames(det_size=cfg.detection.detect_size), video, cfg.detection)
        n = result.track.n_frames
        chosen = sorted({round(k * (n - 1) / max(1, frames - 1)) for k in range(frames)})
        unsure = result.confidence < 0.5
        tiles = []
        for i, frame in enumerate(video.frames(max_frames=chosen[-1] + 1)):
            if i in chosen:
                colour = (0, 0, 230) if unsure[i] else (0, 200, 0)
                img = frame.copy()
                box = result.track.boxes[i]
                assert box is not None  # a followed box is on every frame
                t, b, l, r = box
                cv2.rectangle(img, (l, t), (r - 1, b - 1), colour, max(2, round(max(img.shape[:2]) / 320)))
                cv2.putText(img, f"{i / video.fps:.1f} s", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, colour, 2)
                tiles.append(cv2.resize(img, (round(img.shape[1] * 240 / img.shape[0]), 240),
                                        interpolation=cv2.INTER_AREA))
        display(Image(data=cv2.imencode(".jpg", np.hstack(tiles))[1].tobytes()))
        print(result.report())
        return result

    # -- the 2D notebook (chart variant) -------------------------------------------------------------------
    @friendly
    def set_transcript(self, transcript: str = "") -> None:
        """The transcript form (``--dialog_file``): empty for none (the speech is recognised), ``upload`` for a
        .txt file, a path to one, or the words themselves (written to a file for the run)."""
        text = transcript.strip()
        self.dialog_file = None
        if not text:
            print("No transcript: the words are recognised from the speech.")
            return
        if text.lower() == "upload":
            path = upload_file(self.workdir / "uploads", "transcript (a plain-text .txt file)")
        else:
            _mount_if_in_drive(text)
            path = Path(text).expanduser()
            named = len(text) < 4096 and not any(c.isspace() for c in text) and path.suffix.lower() == ".txt"
            if named and not path.is_file():
                raise LipsyncError(f"transcript: no such file {text} (or type the words themselves)")
            if not named:
                path = self.workdir / "inputs" / "transcript.txt"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(transcript.strip() + "\n", encoding="utf-8")
        from ..cues import read_dialog

        dialog = read_dialog(str(path))  # None, with a warning, when it has no words: the speech is recognised
        if dialog is None:
            return
        words = dialog.split()
        self.dialog_file = str(path)
        print(f"Transcript: {len(words)} words ({' '.join(words[:12])}{' ...' if len(words) > 12 else ''})")

    @friendly
    def set_chart(self, *, mouth_chart: str = "auto", mouth_box: str = "", detector: str = "none",
                  hold_frames: int = 1, extended_shapes: str = "GHX", recognizer: str = "pocketsphinx",
                  preview: bool = True) -> Any:
        """The 2D notebook's mouth form -> the chart variant's options, checked now; with ``preview``, the clip's
        frame with the mouth box and the chart's contact sheet (what ``lipsync chart extract`` writes).

        ``mouth_chart``: ``auto`` (the drawings the clip shows), ``upload`` (a zip of ``A.png`` ... ``X.png``),
        or a folder or zip of them. ``mouth_box``: ``TOP BOTTOM LEFT RIGHT`` with an optional ``@SECONDS``,
        several keyframes separated by ``;``. ``detector``: ``none`` (follow the area around the mouth box) or a
        face detector (``anime``) whose track carries the mouth.
        """
        from ..engine.plan import make_config

        chart = mouth_chart.strip() or "auto"
        if chart.lower() == "upload":
            chart = str(upload_file(self.workdir / "uploads", "mouth drawings (a .zip of A.png ... X.png)"))
        elif chart.lower() == "auto":
            chart = "auto"
        else:
            _mount_if_in_drive(chart)
        if chart != "auto":
            chart = str(chart_folder(Path(chart).expanduser(), self.workdir / "inputs" / "mouth_chart"))
        options: dict[str, Any] = {"mouth_chart": chart, "hold_frames": int(hold_frames),
                                   "extended_shapes": extended_shapes.strip().upper(), "recognizer": recognizer}
        boxes = tuple(k.strip() for k in mouth_box.split(";") if k.strip())
        if boxes:
            options["mouth_box"] = boxes
        if detector.strip().lower() not in ("", "none"):
            options["detector"] = detector.strip()
        make_config(self.variant, **{**options, **self.overrides})
        self.options = options
        return self.show_chart() if preview else None

    @friendly
    def show_chart(self) -> Any:
        """The mouth chart the run will use, as a contact sheet (every shape's drawing; fallbacks marked ``A=X``),
        after the first frame with the mouth box(es) drawn; returns the chart."""
        import cv2
        from IPython.display import Image, display

        from ..stages.chart import contact_sheet

        face, audio = self._require_inputs()
        frame, chart = mouth_chart_of(face, audio, self.variant, self.run_options())
        if frame is not None:
            display(Image(data=cv2.imencode(".jpg", frame)[1].tobytes()))
        display(Image(data=cv2.imencode(".png", contact_sheet(chart))[1].tobytes()))
        shapes = ", ".join(sorted(chart.drawings))
        if chart.cover:
            print(f"Mouth chart (your drawings): {shapes}")
            return chart
        folder = self.workdir / "chart"  # as `lipsync chart extract` writes it
        shutil.rmtree(folder, ignore_errors=True)
        chart.save(folder)
        print(f"Mouth chart (the clip's own drawings): {shapes}. They are saved in {folder} (with the contact "
              "sheet): to correct a shape, rename or redraw them and give that folder as mouth_chart.")
        return chart

    @friendly
    def cue_files(self, *, dat_fps: int = 24, preston_blair: bool = False, copy_to_drive: bool = False) -> list[Path]:
        """After a 2D run: the mouth cues it wrote (``<output>.cues.json``) also as TSV, XML and Moho ``.dat``
        (:mod:`lipsync_core.cues.formats`), each offered for download (and copied to Drive when asked)."""
        made = [self.result] if self.result is not None and not self.audios else \
            [Path(r.outfile) for r in self.results if r.status in ("done", "skipped")]
        if not made:
            raise LipsyncError("no video yet: run the lip-sync cell first")
        written = []
        for video in made:
            cues = video.with_name(video.stem + ".cues.json")  # where the run writes them
            written += [cues, *write_cue_formats(cues, fps=dat_fps, preston_blair=preston_blair)]
        offer_downloads(written)
        if copy_to_drive and not (self.audios and self.cache_dir is not None):  # a batch there is in Drive already
            for path in written:
                save_to_drive(path)
        return written

    @friendly
    def box_helper(self, at: Any = 0) -> BoxHelper:
        """Show the frame at ``at`` (seconds or mm:ss) with the face box and sliders to fix it."""
        from ..support.times import parse_time

        self._require_inputs()
        helper = BoxHelper(self, parse_time(at, name="frame time") or 0.0)
        helper.show()
        return helper


# -- the 2D notebook -----------------------------------------------------------------------------------------------
def chart_folder(source: Path, dest: Path) -> Path:
    """A folder of mouth drawings (``A.png`` ... ``X.png``): ``source`` itself, or where its zip is unpacked
    (``dest``; the drawings may sit in a subfolder of the zip)."""
    import zipfile

    from ..stages.chart import SHAPES

    if source.is_dir():
        return source
    if not zipfile.is_zipfile(source):
        raise LipsyncError(f"mouth chart: {source} is neither a folder nor a zip of drawings (A.png ... X.png); "
                           "or use auto")
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with zipfile.ZipFile(source) as z:
        z.extractall(dest)

    def drawn(folder: Path) -> int:
        return sum(1 for f in folder.iterdir() if f.is_file() and f.stem.upper() in SHAPES and len(f.stem) == 1)

    folders = sorted((d for d in [dest, *dest.rglob("*")] if d.is_dir() and "__MACOSX" not in d.parts),
                     key=lambda d: (-drawn(d), len(d.parts)))
    return folders[0]


def mouth_chart_of(face: Path, audio: Path, variant: str, options: dict[str, Any]) -> tuple[Any, Any]:
    """The first keyframe's frame with its ``--mouth_box`` drawn (None without one) and the mouth chart a run of
    ``variant`` with ``options`` uses on ``face``: prepared as ``lipsync chart extract`` and the chart stage do
    (:func:`lipsync_core.engine.chart.chart_for`), over the frames the run shows (as long as ``audio``)."""
    import math

    from ..engine.chart import chart_for, follows_face, mouth_keyframes
    from ..engine.plan import make_config
    from ..engine.track import track_faces
    from ..face.types import MouthInBox
    from ..job import session_for
    from ..media.probe import probe

    cfg = make_config(variant, **options)
    session = session_for(cfg)
    session.fetch_weights()
    video = session.open_video(face)
    n = max(1, math.ceil((probe(audio).duration or 1.0) * video.fps))
    track = track_faces(session, video, cfg.detection, n)
    det = session.plan.detector
    _, chart = chart_for(video, track, cfg.render, follows_face=follows_face(cfg.detection, det),
                         placement=det.mouth if det is not None else MouthInBox())
    keys = mouth_keyframes(cfg.render)
    frame = None
    if keys:  # the first keyframe's frame
        decoded = list(video.frames(max_frames=round(keys[0].t * video.fps) + 1))
        frame = draw_boxes(decoded[-1], None, keys[0].box) if decoded else None
    return frame, chart


def write_cue_formats(cues_json: Path, *, fps: int = 24, preston_blair: bool = False) -> list[Path]:
    """The cues of a run's ``<output>.cues.json`` written beside it as TSV, XML and Moho ``.dat``
    (:func:`lipsync_core.cues.formats.render`); returns the written files."""
    import json

    from ..cues import MouthCue
    from ..cues.formats import CueFile, render

    if not cues_json.is_file():
        raise LipsyncError(f"no cue file beside the video ({cues_json.name}); was it made by the 2D (chart) run?")
    doc = json.loads(cues_json.read_text(encoding="utf-8"))
    meta = doc.get("metadata", {})
    cues = [MouthCue(float(c["start"]), float(c["end"]), str(c["value"])) for c in doc["mouthCues"]]
    idle = cues[-1].value if cues else "X"
    info = CueFile(sound_file=str(meta.get("soundFile", "")), duration=float(meta.get("duration", 0.0)), idle=idle,
                   recognizer=str(meta.get("recognizer", "pocketsphinx")), dialog=bool(meta.get("dialog", False)))
    stem = cues_json.name.removesuffix(".json")
    out = []
    for fmt in ("tsv", "xml", "dat"):
        path = cues_json.with_name(f"{stem}.{fmt}")
        path.write_text(render(cues, info, fmt, fps=fps, preston_blair=preston_blair and fmt == "dat"),
                        encoding="utf-8")
        out.append(path)
    return out


def _several(audio: str) -> list[str]:
    """The audio sources when ``audio`` names several (a folder, or sources separated by ";"), else []."""
    from ..batch.jobs import media_files

    if ";" in audio:
        return [a.strip() for a in audio.split(";") if a.strip()]
    folder = Path(audio).expanduser()
    return [str(p) for p in media_files(folder, "audio")] if folder.is_dir() else []


def _output_stem(source: str, index: int) -> str:
    """A file name for the video made with the audio ``source``: its name, else its position."""
    from urllib.parse import urlsplit

    name = Path(urlsplit(source).path).stem if "://" in source else Path(source).stem
    name = re.sub(r"[^\w.-]+", "_", name).strip("._")
    return f"{index:02d}_{name}" if name else f"{index:02d}"


def describe_media(path: Path, role: str) -> str:
    """One line about a resolved input, e.g. ``face: clip.mp4, 1280x720, 25 fps, 4.0 s``."""
    from ..media.probe import probe

    info = probe(path)
    parts = [f"{role}: {path.name}"]
    if info.has_video and info.frame_size:
        parts.append("{}x{}".format(*info.frame_size))
    if info.is_image:
        parts.append("still image")
    elif info.has_video and info.fps:
        parts.append(f"{info.fps:g} fps")
    if info.duration:
        parts.append(f"{info.duration:.1f} s")
    return ", ".join(parts)


# -- results -------------------------------------------------------------------------------------------------------
def video_html(path: str | os.PathLike, width: int = 640) -> str:
    """An HTML5 ``<video>`` with the file embedded (works in Colab, where local files are not served)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<video controls width="{width}" style="max-width:100%">'
            f'<source src="data:video/mp4;base64,{data}" type="video/mp4"></video>')


def results_html(results: list[Any]) -> str:
    """The batch's results as an HTML table: job, status, seconds, the video or the error."""
    import html

    rows = []
    for r in results:
        what = html.escape(r.error or "") if r.status == "failed" else html.escape(Path(r.outfile).name)
        secs = f"{r.seconds:.0f}" if r.status == "done" and r.seconds is not None else ""
        rows.append(f"<tr><td>{r.row}</td><td>{r.status}</td><td>{secs}</td><td>{what}</td></tr>")
    return ("<table><tr><th>#</th><th>status</th><th>s</th><th>video / error</th></tr>" + "".join(rows)
            + "</table>")


def show_results(results: list[Any], preview: bool = True) -> None:
    """The results table; then a chooser that previews any of the videos (each of them without ipywidgets)."""
    from IPython.display import HTML, display

    display(HTML(results_html(results)))
    made = [Path(r.outfile) for r in results if r.status in ("done", "skipped")]
    if not preview or not made:
        return
    widgets = _widgets()
    if widgets is None:
        for path in made:
            show_result(path)
        return
    chooser = widgets.Dropdown(options=[(p.name, str(p)) for p in made], description="Preview")
    out = widgets.Output()

    def show(change: Any) -> None:
        out.clear_output()
        with out:
            show_result(change["new"] if isinstance(change, dict) else chooser.value)

    chooser.observe(show, names="value")
    display(chooser, out)
    show(None)


def show_result(path: str | os.PathLike) -> None:
    """Preview the video inline and offer it for download (a button on Colab, a link in Jupyter)."""
    from IPython.display import HTML, display

    path = Path(path)
    size = path.stat().st_size
    if size <= PREVIEW_MAX_BYTES:
        display(HTML(video_html(path)))
    else:
        print(f"{path.name} is {size / 2**20:.0f} MB: too big to preview here; download it instead.")
    offer_downloads([path])


def offer_downloads(paths: list[Path]) -> None:
    """A download button per file on Colab (with its name when there are several), a link each in Jupyter."""
    from IPython.display import FileLink, display

    widgets = _widgets()
    if not in_colab() or widgets is None:
        for path in paths:
            display(FileLink(os.path.relpath(path)))
        return
    for path in paths:
        button = widgets.Button(description="Download" if len(paths) == 1 else path.name, icon="download",
                                button_style="success", layout=widgets.Layout(width="auto"))
        out = widgets.Output()

        def download(_: Any, path: Path = path, out: Any = out) -> None:
            from google.colab import files

            with out:
                files.download(str(path))

        button.on_click(download)
        display(widgets.VBox([button, out]))


def show_scores(report: str | os.PathLike) -> None:
    """Display a ``--score`` JSON (:mod:`lipsync_core.score.session`): the scores and the per-second plot."""
    import json

    from IPython.display import HTML, display

    display(HTML(score_html(json.loads(Path(report).read_text(encoding="utf-8")))))


def score_html(data: dict[str, Any], width: int = 640, height: int = 120) -> str:
    """The scores of a run (and of the face video with its own audio) as a line each, and an inline SVG plot of
    the per-second sync confidence of the output's face tracks over time (no plotting library needed)."""
    def line(label: str, d: dict[str, Any] | None) -> str:
        if d is None or d["overall"] is None:
            return f"<b>{label}</b>: not scored"
        o = d["overall"]
        metric = (f"LSE-D {o['lse_d']:.2f} (lower is better), LSE-C {o['lse_c']:.2f} (higher is better)"
                  if d["scorer"] == "syncnet" else f"expert similarity {o['similarity']:.3f}")
        return (f"<b>{label}</b>: {metric}, A/V offset {o['offset_frames']:+d} frames ({o['offset_ms']:+.0f} ms; "
                f"+ = audio early), {o['windows']} windows")

    key = "confidence" if data["scorer"] == "syncnet" else "similarity"
    points = [((s["start_s"] + s["end_s"]) / 2, s[key]) for t in data["tracks"] for s in t["segments"]]
    rows = [line("output", data)]
    if data.get("reference") is not None:
        rows.append(line("face video with its own audio", data["reference"]))
    if data.get("fix"):
        rows.append(f"<b>offset fix</b>: {data['fix']['reason']}" + (" (applied)" if data["fix"]["applied"] else ""))
    svg = ""
    if points:
        seconds = max(data["seconds"], 1e-3)
        lo, hi = min(0.0, *(v for _, v in points)), max(1e-6, *(v for _, v in points))
        x = [8 + (width - 16) * t / seconds for t, _ in points]
        y = [height - 16 - (height - 24) * (v - lo) / (hi - lo) for _, v in points]
        zero = height - 16 - (height - 24) * (0 - lo) / (hi - lo)
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y))
        dots = "".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5"/>' for a, b in zip(x, y))
        svg = (f'<svg width="{width}" height="{height}" style="max-width:100%;background:#fafafa">'
               f'<line x1="8" y1="{zero:.1f}" x2="{width - 8}" y2="{zero:.1f}" stroke="#bbb"/>'
               f'<polyline points="{path}" fill="none" stroke="#1a73e8" stroke-width="2"/>'
               f'<g fill="#1a73e8">{dots}</g>'
               f'<text x="8" y="{height - 2}" font-size="11">0 s</text>'
               f'<text x="{width - 40}" y="{height - 2}" font-size="11">{seconds:.1f} s</text>'
               f'<text x="8" y="12" font-size="11">sync {key} per second (higher is better)</text></svg>')
    return "<div>" + "<br>".join(rows) + (f"<br>{svg}" if svg else "") + "</div>"


# -- the face-box helper -------------------------------------------------------------------------------------------
def draw_boxes(frame: Any, detected: Box | None, chosen: Box | None) -> Any:
    """A copy of ``frame`` with the detected box (blue) and the chosen fixed box (green) drawn."""
    import cv2

    img = frame.copy()
    thick = max(2, round(max(img.shape[:2]) / 320))
    for box, colour in ((detected, (255, 128, 0)), (chosen, (0, 200, 0))):
        if box is not None:
            t, b, l, r = box
            cv2.rectangle(img, (l, t), (r - 1, b - 1), colour, thick)
    return img


def clamp_box(box: Box, size: tuple[int, int]) -> Box:
    """``box`` limited to a (width, height) frame, at least 2 pixels each way."""
    w, h = size
    t, b, l, r = box
    t, l = min(max(0, t), h - 2), min(max(0, l), w - 2)
    return t, min(max(t + 2, b), h), l, min(max(l + 2, r), w)


class BoxHelper:
    """One frame with the detected face box, four sliders and two switches: "use this box on every frame" sets
    ``job.box``; "follow this box" makes this frame a keyframe (``job.keyframes``) that the run tracks through
    the clip, and "preview" shows the tracked box on a few frames (:meth:`Job.preview_track`).

    The frame is shown as the run sees it (after resize_factor, rotate, crop), and the detected box is
    the one the run would use there (padded, smoothed). For faces a detector misses, move the sliders
    and tick a switch: the run then skips detection. Open the helper at other times to add keyframes.
    """

    def __init__(self, job: Job, at_seconds: float) -> None:
        from ..engine.plan import Plan, make_config
        from ..engine.session import Session
        from ..engine.track import track_faces

        if job.face is None:
            raise LipsyncError("no inputs yet: run the inputs cell first")
        self.job = job
        cfg = make_config(job.variant, **{**job.run_options(), "box": None, "track_box": None})
        session = Session(Plan.from_options(cfg))
        session.fetch_weights()  # all of the run's weights: the run needs them next anyway
        video = session.open_video(job.face)
        wanted = 0 if video.static else round(at_seconds * video.fps)
        self.index, self.frame = -1, None
        for self.index, self.frame in enumerate(video.frames(max_frames=wanted + 1)):
            pass  # keep the last frame decoded (the clip may end before the time asked for)
        if self.frame is None:
            raise LipsyncError(f"could not decode a frame of {job.face}")
        track = track_faces(session, video, cfg.detection, self.index + 1)
        self.detected: Box | None = track.boxes[self.index]
        self.size = video.frame_size
        self.at = round(self.index / video.fps, 3)  # the keyframe time of this frame
        self._build()

    def _build(self) -> None:
        widgets = _widgets()
        w, h = self.size
        if widgets is None:
            self.sliders, self.use_box, self.follow = {}, None, None
            return
        start = self.job.keyframes.get(self.at) or self.job.box or self.detected or (h // 4, 3 * h // 4, w // 4,
                                                                                     3 * w // 4)
        t, b, l, r = clamp_box(start, self.size)
        slider = functools.partial(widgets.IntSlider, continuous_update=False,
                                   layout=widgets.Layout(width="480px"))
        self.sliders = {"top": slider(value=t, min=0, max=h, description="top"),
                        "bottom": slider(value=b, min=0, max=h, description="bottom"),
                        "left": slider(value=l, min=0, max=w, description="left"),
                        "right": slider(value=r, min=0, max=w, description="right")}
        self.use_box = widgets.Checkbox(value=self.job.box is not None,
                                        description="use this box on every frame (skips face detection)",
                                        layout=widgets.Layout(width="480px"))
        self.follow = widgets.Checkbox(value=self.at in self.job.keyframes,
                                       description="follow this box through the clip (a keyframe at this frame)",
                                       layout=widgets.Layout(width="480px"))
        self.preview = widgets.Button(description="preview the tracked box")
        self.output = widgets.Output()
        self.preview.on_click(self._preview)
        self.image = widgets.Image(format="jpeg")
        if self.detected is None:
            note = "No face detected in this frame: set a box with the sliders and tick the switch."
        else:
            note = f"Detected box (blue): {self.detected}. The green box is the one the sliders set."
        self.note = widgets.Label(value=f"Frame {self.index}. {note}")
        for control in (*self.sliders.values(), self.use_box, self.follow):
            control.observe(self._changed, names="value")
        self._changed(None)

    @property
    def box(self) -> Box:
        """The box the sliders set, clamped to the frame."""
        if not self.sliders:
            return clamp_box(self.job.box or self.detected or (0, self.size[1], 0, self.size[0]), self.size)
        s = self.sliders
        return clamp_box((s["top"].value, s["bottom"].value, s["left"].value, s["right"].value), self.size)

    def _changed(self, change: Any) -> None:
        import cv2

        assert self.use_box is not None and self.follow is not None  # observed only once the widgets exist
        # The two switches exclude each other: a fixed box is never tracked.
        if change is not None and change["owner"] is self.use_box and self.use_box.value:
            self.follow.value = False
        elif change is not None and change["owner"] is self.follow and self.follow.value:
            self.use_box.value = False
        self.job.box = self.box if self.use_box.value else None
        if self.follow.value:
            self.job.keyframes[self.at] = self.box
        else:
            self.job.keyframes.pop(self.at, None)
        img = draw_boxes(self.frame, self.detected, self.box)
        scale = min(1.0, 640 / max(img.shape[:2]))
        if scale < 1.0:
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        self.image.value = cv2.imencode(".jpg", img)[1].tobytes()

    def show(self) -> None:
        from IPython.display import Image, display

        widgets = _widgets()
        if widgets is None:  # plain Jupyter without the notebook extra: a picture and how to set the box by hand
            import cv2

            display(Image(data=cv2.imencode(".jpg", draw_boxes(self.frame, self.detected, None))[1].tobytes()))
            print(f"Frame {self.index}, detected box (blue): {self.detected}. ipywidgets is not installed, so there "
                  "are no sliders: set a fixed box in a cell with job.box = (top, bottom, left, right), a box to "
                  f"follow with job.keyframes[{self.at:g}] = (top, bottom, left, right), or "
                  "pip install 'lipsync_core[notebook]' and restart the kernel.")
            return
        display(widgets.VBox([self.note, self.image, *self.sliders.values(), self.use_box, self.follow,
                              self.preview, self.output]))

    def _preview(self, _: Any) -> None:
        self.output.clear_output()
        with self.output:
            self.job.preview_track()


def _widgets() -> Any:
    """The ipywidgets module, or None where it is not installed (plain Jupyter without the notebook extra)."""
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets
