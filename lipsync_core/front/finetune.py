"""The helpers behind the "Fine-tune on your person" notebook: workspace, clips, prepare, train, before/after.

One :class:`FineTune` goes through the notebook's cells: where the work lives (a Google Drive folder, so a Colab
reset loses nothing: dataset, checkpoints, metrics and weights are there and training resumes), the clips
(uploads, Drive, URLs, YouTube, each with an optional part ``#t=START,END``), ``prepare`` with its summary,
``train`` with a live loss plot and the validation scores per interval, and ``compare``: a test clip lip-synced
by the starting generator and by the fine-tuned one, side by side with their sync scores. Expected errors show
as one line (:class:`~lipsync_core.front.notebook.NotebookError`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..face.track import DEFAULT_DETECTOR
from ..support.errors import LipsyncError
from .notebook import _mount_if_in_drive, friendly, gpu_report, in_colab, mount_drive, upload_file, video_html

#: The Drive folder (under MyDrive) that holds a fine-tune's dataset, run and weight cache.
DRIVE_FOLDER = "lipsync_finetune"
#: Separates clips in the notebook's one-line field.
CLIP_SEPARATOR = ";"


def setup(workdir: str = DRIVE_FOLDER) -> FineTune:
    """The setup cell: report the GPU and start a :class:`FineTune` in ``workdir`` (until the workspace cell)."""
    from ..support.version import __version__

    print(f"lipsync_core {__version__}, fine-tuning. {gpu_report()}")
    return FineTune(Path(workdir))


@dataclass
class FineTune:
    """What the cells collect: the workspace, the dataset summary, the training result, the comparison."""

    root: Path
    cache_dir: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields no form shows
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def dataset(self) -> Path:
        return self.root / "dataset"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @friendly
    def set_workspace(self, *, in_drive: bool, folder: str = DRIVE_FOLDER) -> None:
        """Keep everything in ``MyDrive/<folder>`` (Colab) or in ``folder`` next to the notebook."""
        self.root = (mount_drive() / folder) if in_drive else Path(folder)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cache_dir = str(self.root / "cache") if in_drive else None
        done = (self.run_dir / "metrics.jsonl").is_file()
        print(f"Workspace: {self.root}" + (" (a run is there: training resumes it)" if done else ""))

    @friendly
    def prepare(self, clips: str = "", *, detector: str = DEFAULT_DETECTOR, sync_check: bool = True, cookies: str = "",
                clip_seconds: float = 3.0, device: str = "auto") -> Any:
        """Prepare (or add to) the dataset from ``clips``: sources separated by ``;`` (empty: upload videos)."""
        from ..engine.plan import make_config
        from ..training.prepare import PrepareConfig, prepare
        from .train_cli import parse_source

        texts = [c.strip() for c in clips.split(CLIP_SEPARATOR) if c.strip()]
        if not texts:
            texts = [str(p) for p in upload_files(self.root / "uploads", "videos of the person speaking")]
        for text in texts:
            _mount_if_in_drive(text)
        run = make_config("original", detector=detector, device=device, cache_dir=self.cache_dir,
                          cookies=cookies or None)
        summary = prepare([parse_source(t) for t in texts],
                          PrepareConfig(out=str(self.dataset), clip_seconds=clip_seconds, no_sync_check=not sync_check),
                          run)
        print(summary.text())
        return summary

    @friendly
    def train(self, *, gan: bool = False, steps: int = 5000, batch_size: int = 16, lr: float = 1e-5,
              eval_interval: int = 500, device: str = "auto", plot: bool = True) -> Any:
        """Fine-tune on the dataset (resuming the run in the workspace, if any) with a live plot of the losses."""
        from ..training.config import TrainConfig
        from ..training.trainer import METRICS, read_metrics, train

        cfg = TrainConfig(dataset=str(self.dataset), out=str(self.run_dir), gan=gan, steps=steps,
                          batch_size=batch_size, lr=lr, disc_lr=lr, eval_interval=eval_interval, device=device,
                          cache_dir=self.cache_dir, resume=True, **self.overrides)
        self.history = read_metrics(self.run_dir / METRICS)
        handle = _display_plot(self.history) if plot else None

        def event(kind: str, record: dict[str, Any]) -> None:
            self.history.append(record)
            if kind == "val":
                print(validation_line(record))
            if handle is not None and kind in ("train", "val"):
                handle.update(_html(loss_plot_svg(self.history)))

        started = time.perf_counter()
        result = train(cfg, on_event=event)
        why = "stopped early: no better validation" if result.stopped == "early_stop" else "all steps done"
        print(f"{why} at step {result.step} ({time.perf_counter() - started:.0f} s); best step {result.best_step}, "
              f"its checkpoint: {self.best}")
        return result

    @property
    def best(self) -> Path:
        return self.run_dir / "best_checkpoint.pth"

    @friendly
    def compare(self, face: str, audio: str = "same", *, start: Any = "", end: Any = "", audio_start: Any = "",
                audio_end: Any = "", variant: str = "original", gan: bool = False, detector: str = DEFAULT_DETECTOR,
                device: str = "auto") -> tuple[Path, Path]:
        """``face`` lip-synced to ``audio`` by the starting generator and by the fine-tuned one, side by side
        with their sync scores (SyncNet LSE-D / LSE-C)."""
        from ..inputs.resolve import resolve_inputs
        from ..job import lipsync
        from ..score.session import report_path

        if not self.best.is_file():
            raise LipsyncError(f"no fine-tuned checkpoint in {self.run_dir} yet: run the training cell first")
        if not face.strip():
            face = str(upload_file(self.root / "uploads", "test video of the person"))
        for text in (face, audio):
            _mount_if_in_drive(text)
        face_path, audio_path = resolve_inputs(face, audio, start=start, end=end, audio_start=audio_start,
                                               audio_end=audio_end, workdir=self.root / "compare" / "inputs")
        options = {"detector": detector, "device": device, "cache_dir": self.cache_dir, "score": True,
                   "quiet": True}
        outs = []
        for name, ckpt in (("before", "wav2lip_gan" if gan else "wav2lip"), ("after", str(self.best))):
            out = self.root / "compare" / f"{name}_{variant}.mp4"
            outs.append(lipsync(face_path, audio_path, out, variant=variant, checkpoint_path=ckpt, **options))
        show_side_by_side(outs, [report_path(o) for o in outs], ["before (released generator)", "after (fine-tuned)"])
        return outs[0], outs[1]


def upload_files(dest_dir: Path, what: str) -> list[Path]:
    """Ask the browser for one or more files (Colab) and save them in ``dest_dir``."""
    if not in_colab():
        raise LipsyncError("Uploading works only on Google Colab; give the clips as paths, URLs or Drive links")
    from google.colab import files

    print(f"Choose the {what} (several at once is fine):")
    uploaded = files.upload()
    if not uploaded:
        raise LipsyncError("no file was uploaded; run the cell again")
    dest_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for name, data in uploaded.items():
        dest = dest_dir / Path(name).name
        dest.write_bytes(data)
        Path(name).unlink(missing_ok=True)  # Colab's own copy in the working folder
        saved.append(dest)
    return saved


def validation_line(record: dict[str, Any]) -> str:
    """One line per validation: the held-out sync loss and L1, and the rendered clip's LSE-C when measured."""
    parts = [f"step {record['step']}"]
    if "val_sync" in record:
        parts.append(f"validation sync loss {record['val_sync']:.3f} (lower is better), L1 {record['val_l1']:.4f}")
    if "val_lse_c" in record:
        ref = f" (the real footage: {record['ref_lse_c']:.2f})" if "ref_lse_c" in record else ""
        parts.append(f"rendered clip LSE-C {record['val_lse_c']:.2f}{ref}")
    if record.get("best"):
        parts.append("best so far")
    return ", ".join(parts)


def loss_plot_svg(history: list[dict[str, Any]], width: int = 640, height: int = 180) -> str:
    """Training L1 and sync loss (per log interval) and the validation sync loss, against the step, as SVG.

    Each curve has its own scale (min to max), as their ranges differ by orders of magnitude; the legend gives
    the last values."""
    series = {"train L1": ("l1", "train", "#1a73e8"), "train sync": ("sync", "train", "#e8710a"),
              "validation sync": ("val_sync", "val", "#188038")}
    steps = [r["step"] for r in history if r.get("kind") in ("train", "val")]
    if not steps:
        return ""
    last_step = max(max(steps), 1)
    lines, legend = [], []
    for i, (label, (key, kind, colour)) in enumerate(series.items()):
        pts = [(r["step"], r[key]) for r in history if r.get("kind") == kind and r.get(key) is not None]
        if not pts:
            continue
        lo, hi = min(v for _, v in pts), max(v for _, v in pts)
        span = hi - lo or 1.0
        xy = " ".join(f"{8 + (width - 16) * s / last_step:.1f},{height - 20 - (height - 40) * (v - lo) / span:.1f}"
                      for s, v in pts)
        lines.append(f'<polyline points="{xy}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend.append(f'<text x="{8 + 210 * i}" y="12" font-size="11" fill="{colour}">{label}: {pts[-1][1]:.4f}'
                      f"</text>")
    return (f'<svg width="{width}" height="{height}" style="max-width:100%;background:#fafafa">{"".join(lines)}'
            f'{"".join(legend)}<text x="8" y="{height - 4}" font-size="11">step 0</text>'
            f'<text x="{width - 70}" y="{height - 4}" font-size="11">step {last_step}</text></svg>')


def show_side_by_side(videos: list[Path], reports: list[Path], labels: list[str]) -> None:
    """Videos next to each other, each with its sync scores below."""
    from IPython.display import HTML, display

    cells = []
    for video, report, label in zip(videos, reports, labels):
        data = json.loads(report.read_text(encoding="utf-8"))
        o = data["overall"]
        score = ("not scored" if o is None else
                 f"LSE-D {o['lse_d']:.2f} (lower is better), LSE-C {o['lse_c']:.2f} (higher is better)")
        cells.append(f"<td style='vertical-align:top'><b>{label}</b><br>{video_html(video, 360)}<br>{score}</td>")
    display(HTML(f"<table><tr>{''.join(cells)}</tr></table>"))


def _html(svg: str) -> Any:
    from IPython.display import HTML

    return HTML(svg or "<i>the loss plot appears after the first steps</i>")


def _display_plot(history: list[dict[str, Any]]) -> Any:
    from IPython.display import display

    return display(_html(loss_plot_svg(history)), display_id=True)
