"""Write the seven notebooks of the suite from one template.

    python notebooks/build_notebooks.py          # rewrite notebooks/*.ipynb
    python notebooks/build_notebooks.py --check  # exit 1 if a committed notebook differs

Every default a form shows comes from the package: settings from the variant's preset
(:func:`lipsync_core.engine.options.make_config`), weights from ``weights_manifest.json``, the install and
badge addresses from :data:`lipsync_core.REPO_URL`. So after changing any of those, run this script;
``tests/notebooks`` fails while a committed notebook differs from what it writes.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from lipsync_core import REPO_URL
from lipsync_core.engine.catalog import CATALOG
from lipsync_core.engine.options import BLENDS, MASK_REGIONS, RECOGNIZERS
from lipsync_core.engine.plan import make_config
from lipsync_core.face.track import DEFAULT_DETECTOR
from lipsync_core.front.notebook import DRIVE_RESULTS_FOLDER, DRIVE_WEIGHTS_FOLDER, GENERATORS, colab_url
from lipsync_core.models.registry import SPECS
from lipsync_core.weights.download import describe
from lipsync_core.weights.manifest import Manifest, load_manifest

HERE = Path(__file__).resolve().parent
MANIFEST = HERE.parent / "weights_manifest.json"


@dataclass(frozen=True)
class Spec:
    """One notebook: its file, the variant it runs, and the words around the forms."""

    file: str
    variant: str
    title: str
    summary: str
    gan_choice: bool = False  # whether the settings let the user pick the Wav2Lip generator


NOTEBOOKS = (
    Spec("lipsync_original.ipynb", "original", "Wav2Lip",
         "The original Wav2Lip: the mouth region is regenerated at 96x96 pixels and pasted back with a soft edge. "
         "Fastest of the suite and the best lip sync; the mouth is softer than the rest of the face.",
         gan_choice=True),
    Spec("lipsync_hq.ipynb", "hq", "Wav2Lip-HQ (without GAN)",
         "Wav2Lip-HQ with the non-GAN generator: Wav2Lip, then ESRGAN x4 super-resolution of the face and a "
         "face-segmentation mask so only the face is replaced. Sharper than the original."),
    Spec("lipsync_hq_gan.ipynb", "hq_gan", "Wav2Lip-HQ + GAN",
         "Wav2Lip-HQ with the GAN generator (wav2lip_gan): ESRGAN x4 super-resolution and a face-segmentation "
         "mask as in HQ, starting from the generator trained with a visual-quality discriminator."),
    Spec("lipsync_codeformer.ipynb", "codeformer", "Wav2Lip + CodeFormer",
         "Wav2Lip followed by CodeFormer face restoration (5-point alignment, ParseNet paste-back mask), "
         "optional sharpening and a RealESRGAN x2 upscale of the whole frame. The most detailed faces; slowest.",
         gan_choice=True),
)
SIMPLE = Spec("lipsync_simple.ipynb", "original", "Wav2Lip: Simple",
              "The fewest choices: a YouTube link (or an upload), the part to use, your audio (upload or record), "
              "the padding, go. Runs the original Wav2Lip.", gan_choice=True)
FINETUNE = Spec("lipsync_finetune.ipynb", "original", "Fine-tune Wav2Lip on your person",
                "Teach Wav2Lip one person's mouth, teeth and beard: your videos of them become a training set, the "
                "released generator is fine-tuned on it as the original training does (its losses, the frozen "
                "lip-sync expert, optionally the GAN discriminator), and a test clip shows the result before and "
                "after, with sync scores.")
ANIMATION = Spec("lipsync_2d.ipynb", "chart", "2D animation: re-dub with the character's own mouth drawings",
                 "For cartoons: no Wav2Lip and no photographic face. The mouth is found from a box you give (or the "
                 "anime face detector) and followed through the clip; the speech becomes mouth cues (Rhubarb's "
                 "shapes A-H and X, from the transcript when you give one); each frame shows the character's own "
                 "drawing of its cue's shape: the drawings the clip itself shows, or yours. You get the re-dubbed "
                 "video and the cues for an animation program (TSV, JSON, XML, Moho .dat).")
ALL = (*NOTEBOOKS, SIMPLE, FINETUNE, ANIMATION)


# -- form lines ----------------------------------------------------------------------------------------------------
def param(name: str, value: Any, spec: str | None = None) -> str:
    """A Colab form field: ``name = value  #@param ...`` (the type follows the value unless ``spec`` is given)."""
    if spec is None:
        kind = {bool: "boolean", int: "integer", float: "number", str: "string"}[type(value)]
        spec = f'{{type:"{kind}"}}'
    literal = json.dumps(value) if isinstance(value, str) else repr(value)  # Python, with double-quoted strings
    return f"{name} = {literal}  #@param {spec}"


def choices(options: tuple[str, ...], allow_input: bool = False) -> str:
    return json.dumps(list(options)) + (" {allow-input: true}" if allow_input else "")


def slider(lo: float, hi: float, step: float) -> str:
    return f'{{type:"slider", min:{lo}, max:{hi}, step:{step}}}'


def call(target: str, kwargs: list[str], args: tuple[str, ...] = ()) -> str:
    """``target(args..., k=k, ...)`` wrapped one argument per line when it is long."""
    parts = [*args, *(f"{k}={k}" for k in kwargs)]
    one_line = f"{target}({', '.join(parts)})"
    if len(one_line) <= 100:
        return one_line
    return f"{target}(\n" + "".join(f"    {p},\n" for p in parts) + ")"


def form(title: str, lines: list[str], code: str) -> str:
    return "\n".join([f"#@title {title}", *lines, "", code])


def names(lines: list[str]) -> list[str]:
    return [line.split(" = ", 1)[0] for line in lines if "#@param" in line]


# -- cells ---------------------------------------------------------------------------------------------------------
def intro(spec: Spec, manifest: Manifest) -> str:
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(spec.file)})"
    rows = []
    for role, wid in CATALOG.variant_weights(spec.variant).items():
        entry = manifest.entry(wid)
        rows.append(f"| `{role}` | `{entry.file}` | {SPECS[entry.arch].description} | {entry.license} |")
    if spec.gan_choice:
        gan = not _gan_default(spec.variant)
        other = manifest.entry(GENERATORS[gan])
        rows.append(f"| `checkpoint` with *use_gan_model* {'ticked' if gan else 'unticked'} | `{other.file}` | "
                    f"{SPECS[other.arch].description} | {other.license} |")
    if spec is SIMPLE:
        steps = ["Fill in the two forms and run the three cells in order.", "",
                 "Any other option of the `lipsync` command can be set in a cell of your own after the setup "
                 'cell, e.g. `job.overrides["detector"] = "haar"` for cartoon faces the default detector misses.']
    else:
        steps = ["Run the cells from top to bottom (Runtime > Run all works once the forms are filled in). "
                 "Open a cell's form to change its fields; the code behind each form is one call into "
                 "`lipsync_core.front.notebook`."]
    parts = [badge, "", f"# {spec.title}", "", spec.summary, "", *steps, "",
             "Weights are downloaded on first use, checked against their published sha256 and cached "
             "(optionally in your Google Drive). This notebook uses:", "",
             "| role | file | model | licence |", "|---|---|---|---|", *rows, "",
             "The Wav2Lip weights are for research and personal, non-commercial use only. "
             f"Source code, issues and the command-line tool: <{REPO_URL}>."]
    return "\n".join(parts)


def setup_cell(spec: Spec) -> str:
    if spec is FINETUNE:
        start = ["from lipsync_core.front import finetune as ft  # noqa: E402 - installed just above", "",
                 "job = ft.setup()"]
    else:
        start = ["from lipsync_core.front import notebook as ln  # noqa: E402 - installed just above", "",
                 f"job = ln.setup({json.dumps(spec.variant)})"]
    return "\n".join([
        "#@title 1. Setup",
        "#@markdown Checks for a GPU and installs `lipsync_core` with an up-to-date `yt-dlp`.",
        "#@markdown The install is skipped when `lipsync_core` is already installed (e.g. in a local Jupyter).",
        "import importlib.util",
        "import subprocess",
        "import sys",
        "",
        f"REPO_URL = {json.dumps(REPO_URL)}",
        'if importlib.util.find_spec("lipsync_core") is None:',
        '    pip = [sys.executable, "-m", "pip", "install", "--quiet"]',
        '    subprocess.run([*pip, f"lipsync_core[notebook] @ git+{REPO_URL}"], check=True)',
        '    subprocess.run([*pip, "--upgrade", "yt-dlp[default]"], check=True)  # YouTube changes often',
        "    importlib.invalidate_caches()",
        "",
        *start,
    ])


def weights_cell(spec: Spec, manifest: Manifest) -> str:
    lines = ["#@markdown Leave a field empty to use the default file (downloaded on first use, sha256-checked).",
             "#@markdown To use your own copy (e.g. when Google Drive says too many users downloaded a file),",
             "#@markdown paste a Google Drive file ID or share link, a URL, or a path in your mounted Drive."]
    detectors = {d.role: name for name, d in CATALOG.detectors.items() if d.role}
    described = {}  # role -> (label, what): the variant's weights, then the other detectors' (used when picked)
    for role, wid in CATALOG.variant_weights(spec.variant).items():
        what = SPECS[manifest.entry(wid).arch].description
        if role == "checkpoint" and spec.gan_choice:
            what += " (the default follows *use_gan_model* in the settings)"
        described[role] = (wid, f"**{role}_path**", what)
    for role, wid in CATALOG.other_detector_weights(spec.variant).items():
        described[role] = (wid, f"**{role}_path** (only with detector `{detectors[role]}`)", CATALOG.roles[role].help)
    for role, (wid, label, what) in described.items():
        entry = manifest.entry(wid)
        mirrors = f" and {len(entry.sources) - 1} mirror(s)" if len(entry.sources) > 1 else ""
        lines += [f"#@markdown {label}: {what}.",
                  f"#@markdown Default: `{entry.file}` from {describe(entry.sources[0])}{mirrors}.",
                  param(f"{role}_path", "")]
    fields = [f"{role}_path" for role in described]
    lines += [f"#@markdown Keep downloaded weights in your Google Drive (`MyDrive/{DRIVE_WEIGHTS_FOLDER}`) so that",
              "#@markdown a new Colab session does not download them again:",
              param("cache_weights_in_drive", False)]
    code = call("job.set_weights", fields, ("cache_in_drive=cache_weights_in_drive",))
    return form("2. Model weights", lines, code)


_SOURCES_HELP = "a path (`/content/drive/MyDrive/...` mounts your Drive), a Drive share link, a URL or a YouTube link"


def inputs_cell() -> str:
    lines = ["#@markdown **face**: the video or image with the face; leave empty to upload it, or give",
             f"#@markdown {_SOURCES_HELP}.",
             param("face", ""),
             "#@markdown Use only part of the face video (seconds or mm:ss; empty = from the start / to the end):",
             param("start", ""), param("end", ""),
             "#@markdown **audio**: the speech; the same kinds of sources, empty to upload, `record` to record in",
             "#@markdown the browser (Colab), `same` to keep the face video's own sound. Several audio files for",
             "#@markdown this face: a folder (e.g. in your Drive) or sources separated by `;`, one video each.",
             param("audio", ""), param("audio_start", ""), param("audio_end", ""),
             "#@markdown **cookies**: only if YouTube asks you to sign in: a `cookies.txt` exported from your",
             "#@markdown browser (its path, or `upload`).",
             param("cookies", "")]
    code = call("job.set_inputs", ["start", "end", "audio_start", "audio_end", "cookies"], ("face", "audio"))
    return form("3. Inputs", lines, code)


def _pads(cfg: Any) -> list[str]:
    return [param(f"pad_{side}", int(v)) for side, v in zip(("top", "bottom", "left", "right"), cfg.pads)]


def _gan_default(variant: str) -> bool:
    return CATALOG.weight_id(variant, "checkpoint") == GENERATORS[True]


#: Form fields of the stages that have options, by stage name (presentation only: the values are RunOptions's).
STAGE_FORMS = {
    "mouth": lambda cfg: [
        "#@markdown **What is pasted**: `lower` (the lower face, as the original) or `mouth` (only an elliptical",
        "#@markdown mouth region: for drawn faces and beards), and the size of that region:",
        param("mask_region", cfg.mask_region, choices(MASK_REGIONS)),
        param("mouth_scale", float(cfg.mouth_scale), slider(0.5, 2.0, 0.05))],
    "sr": lambda cfg: [
        "#@markdown **HQ**: super-resolution of the face, the segmentation mask, the mask's soft edge",
        "#@markdown (pixels of the 96-pixel face) and, above 0, keeping only the face below that fraction:",
        param("super_resolution", not cfg.no_sr), param("segmentation_mask", not cfg.no_segmentation),
        param("mask_feather", cfg.mask_feather, slider(0, 32, 1)),
        param("mask_lower_face", float(cfg.mask_lower_face or 0.0), slider(0.0, 0.9, 0.05))],
    "codeformer": lambda cfg: [
        "#@markdown **CodeFormer**: `fidelity` 0 = strongest restoration, 1 = closest to the input;",
        "#@markdown `sharpen` the mouth (0 = off); `upscale` 2 doubles the output resolution.",
        param("fidelity", float(cfg.fidelity), slider(0.0, 1.0, 0.05)),
        param("sharpen", float(cfg.sharpen), slider(0.0, 2.0, 0.1)),
        param("upscale", cfg.upscale, slider(1, 2, 1))],
}


def settings_cell(spec: Spec) -> str:
    cfg = make_config(spec.variant)
    lines = ["#@markdown **Padding** of the face box in pixels (more bottom padding includes the chin):",
             *_pads(cfg),
             "#@markdown `resize_factor` divides the video resolution (try 2 for 1080p); `nosmooth` stops box",
             "#@markdown smoothing over time (for fast head motion):",
             param("resize_factor", cfg.resize_factor), param("nosmooth", cfg.nosmooth),
             "#@markdown **Face detection**: the detector, the size of the frames it sees (0 = full resolution)",
             "#@markdown and every how many frames it runs (boxes in between are interpolated):",
             param("detector", cfg.detector, choices(tuple(CATALOG.detectors))),
             param("det_size", cfg.det_size or 0), param("det_stride", cfg.det_stride),
             "#@markdown **Batch sizes**: lower them if the GPU runs out of memory.",
             param("face_det_batch_size", cfg.face_det_batch_size),
             param("wav2lip_batch_size", cfg.wav2lip_batch_size),
             "#@markdown **Blending** of the new mouth: `feather` (no visible box edge) or `hard` (as the original).",
             param("blend", cfg.blend, choices(BLENDS)),
             param("device", cfg.device, choices(("auto", "cuda", "cpu")))]
    if spec.gan_choice:
        lines += ["#@markdown **use_gan_model**: the GAN generator looks sharper; the plain one syncs slightly better.",
                  param("use_gan_model", _gan_default(spec.variant))]
    for stage in CATALOG.variant(spec.variant).stages:
        lines += STAGE_FORMS.get(stage, lambda cfg: [])(cfg)
    return form("4. Settings", lines, call("job.set_settings", names(lines)))


def box_cell() -> str:
    lines = ["#@markdown Optional, for faces the detector misses or gets wrong (animation, profile shots): shows",
             "#@markdown the frame at `frame_time` with the detected box (blue). Move the sliders to place the",
             "#@markdown green box, then tick *use this box on every frame*, or *follow this box* to make the frame",
             "#@markdown a keyframe the run tracks through the clip (run this cell again at other times to add",
             "#@markdown keyframes; *preview the tracked box* shows where it goes).",
             param("frame_time", "0")]
    return form("5. Face box helper", lines, "box_helper = job.box_helper(at=frame_time)")


def run_cell(number: int) -> str:
    lines = ["#@markdown Runs the lip sync (progress bars below), then shows the video with a download button.",
             "#@markdown With several audio files: a line per video, a results table and a preview of each; with",
             "#@markdown the weights cached in Drive the videos go to Drive too, and running this cell again after",
             "#@markdown a reset makes only the videos that are missing.",
             f"#@markdown Tick to also copy the video(s) to your Google Drive (`MyDrive/{DRIVE_RESULTS_FOLDER}`):",
             param("copy_to_drive", False),
             "#@markdown Tick to measure the lip sync of the result (LSE-D / LSE-C and the A/V offset, the published",
             "#@markdown SyncNet metric) and of the face video with its own sound, with a per-second plot:",
             param("score_sync", False)]
    return form(f"{number}. Lip-sync", lines, "result = job.run(copy_to_drive=copy_to_drive, score=score_sync)")


def simple_inputs_cell() -> str:
    lines = ["#@markdown **video**: a YouTube link (or any video URL, Drive link or path); empty to upload one.",
             param("video", ""),
             "#@markdown The part to use, in seconds or mm:ss (empty = from the start / to the end):",
             param("start", ""), param("end", ""),
             "#@markdown **audio**: upload the speech, record it in the browser (Colab), or type a path or URL;",
             "#@markdown a folder of audio files (e.g. in your Drive) or several sources separated by `;` make one",
             "#@markdown video each.",
             param("audio", "upload", choices(("upload", "record"), allow_input=True))]
    return form("2. Video and audio", lines, "job.set_inputs(video, audio, start=start, end=end)")


def simple_run_cell() -> str:
    cfg = make_config(SIMPLE.variant)
    lines = ["#@markdown **Padding** of the face box in pixels (more bottom padding includes the chin):",
             *_pads(cfg),
             "#@markdown **use_gan_model**: the GAN generator looks sharper; the plain one syncs slightly better.",
             param("use_gan_model", _gan_default(SIMPLE.variant))]
    code = call("job.set_settings", names(lines)) + "\nresult = job.run()"
    return form("3. Lip-sync", lines, code)


# -- the fine-tuning notebook --------------------------------------------------------------------------------------
#: What the fine-tuning notebook downloads, by role: the generators it starts from, the training networks, the
#: detector of its default settings and the scorer.
FINETUNE_WEIGHTS = (("checkpoint", "wav2lip"), ("checkpoint (GAN)", "wav2lip_gan"), ("expert", "lipsync_expert"),
                    ("disc (GAN)", "visual_quality_disc"), ("syncnet", "syncnet_v2"), ("s3fd", "s3fd"))


def finetune_intro(manifest: Manifest) -> str:
    from lipsync_core.training.config import TrainConfig

    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(FINETUNE.file)})"
    rows = [f"| `{role}` | `{manifest.entry(wid).file}` | {SPECS[manifest.entry(wid).arch].description} | "
            f"{manifest.entry(wid).license} |" for role, wid in FINETUNE_WEIGHTS]
    cfg = TrainConfig(dataset="-")
    parts = [badge, "", f"# {FINETUNE.title}", "", FINETUNE.summary, "",
             "**How much footage.** People who fine-tuned Wav2Lip on one person report that a few minutes give poor "
             "results and an hour or more is the least that worked: many takes of the person speaking to the "
             "camera, the face well lit and unobstructed, the mouth showing what it should learn (teeth, beard). "
             "The prepare cell says how many minutes it kept and why it dropped the rest.", "",
             f"**How long.** The defaults ({cfg.steps} steps of {cfg.batch_size} windows, learning rate "
             f"{cfg.lr:g}, the audio encoder frozen, a validation every {cfg.eval_interval} steps and an early stop "
             f"after {cfg.patience} without progress) take roughly 20-30 minutes on a Colab T4, about twice that "
             "with the GAN (an estimate from the step's FLOPs; no T4 was measured).", "",
             "**How to judge.** Each validation prints the sync loss on held-out clips (lower is better) and, for a "
             "held-out clip rendered through the real pipeline, SyncNet's LSE-C (higher is better) next to the "
             "real footage's own. The best checkpoint is kept. The last cell shows a test clip before and after; "
             "look at the mouth, and distrust a result whose sync is worse than before.", "",
             "**Everything lives in your Google Drive** (the workspace cell): the dataset, the checkpoints, the "
             "metrics and the weights, so after a Colab reset run the cells again and training resumes.", "",
             "Weights used (downloaded on first use, checked against their published sha256 where one exists):", "",
             "| role | file | model | licence |", "|---|---|---|---|", *rows, "",
             "**Licence and consent.** A fine-tuned checkpoint is derived from Wav2Lip's weights and inherits their "
             "terms: research, academic or personal use only, no commercial use. Train only on footage of people "
             f"who agreed to it, and label what you make with it as synthetic. Source: <{REPO_URL}>."]
    return "\n".join(parts)


def workspace_cell() -> str:
    lines = ["#@markdown Keep the dataset, checkpoints and weights in your Google Drive (`MyDrive/<folder>`), so a",
             "#@markdown Colab reset loses nothing and training resumes where it stopped (recommended on Colab):",
             param("keep_in_drive", True), param("folder", "lipsync_finetune")]
    return form("2. Workspace", lines, "job.set_workspace(in_drive=keep_in_drive, folder=folder)")


def clips_cell() -> str:
    from lipsync_core.training.prepare import PrepareConfig

    cfg = PrepareConfig()
    lines = ["#@markdown **clips**: videos of the person speaking, separated by `;`: paths (`/content/drive/MyDrive/",
             "#@markdown ...`), Drive links, URLs or YouTube links; add `#t=START,END` to use a part of one (e.g.",
             "#@markdown `https://youtu.be/...#t=1:00,12:30`). Empty: upload files. Run again to add more clips.",
             param("clips", ""),
             "#@markdown The face detector, the length of the short clips long takes are cut into (seconds), and",
             "#@markdown whether SyncNet checks each stretch (off-sync ones are shifted or dropped):",
             param("detector", DEFAULT_DETECTOR, choices(tuple(CATALOG.detectors))),
             param("clip_seconds", cfg.clip_seconds), param("sync_check", not cfg.no_sync_check),
             "#@markdown **cookies**: only if YouTube asks you to sign in (a `cookies.txt` path).",
             param("cookies", "")]
    code = ("summary = job.prepare(clips, detector=detector, sync_check=sync_check, cookies=cookies, "
            "clip_seconds=clip_seconds)")
    return form("3. Clips -> dataset", lines, code)


def train_cell() -> str:
    from lipsync_core.training.config import TrainConfig

    cfg = TrainConfig(dataset="-")
    lines = ["#@markdown **gan**: fine-tune `wav2lip_gan` with its discriminator (sharper; about twice as slow);",
             "#@markdown unticked: `wav2lip` (the best sync). The loss plot and each validation show below.",
             param("gan", cfg.gan), param("steps", cfg.steps), param("batch_size", cfg.batch_size),
             param("lr", cfg.lr), param("eval_interval", cfg.eval_interval),
             param("device", cfg.device, choices(("auto", "cuda", "cpu")))]
    code = call("result = job.train", names(lines))
    return form("4. Train", lines, code)


def compare_cell() -> str:
    lines = ["#@markdown A test clip of the person (one not in the training clips), lip-synced by the released",
             "#@markdown generator and by yours, side by side with their sync scores. **face** and **audio** take",
             f"#@markdown {_SOURCES_HELP};",
             "#@markdown audio `same` keeps the clip's own sound.",
             param("face", ""), param("start", ""), param("end", ""),
             param("audio", "same"), param("audio_start", ""), param("audio_end", ""),
             param("variant", "original", choices(("original", "hq"))),
             param("compare_detector", DEFAULT_DETECTOR, choices(tuple(CATALOG.detectors)))]
    code = ("comparison = job.compare(face, audio, start=start, end=end, audio_start=audio_start, "
            "audio_end=audio_end,\n                         variant=variant, gan=gan, detector=compare_detector)")
    return form("5. Before and after", lines, code)


# -- the 2D animation notebook -------------------------------------------------------------------------------------
def animation_intro() -> str:
    badge = f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(ANIMATION.file)})"
    parts = [badge, "", f"# {ANIMATION.title}", "", ANIMATION.summary, "",
             "Run the cells from top to bottom. Open a cell's form to change its fields; the code behind each form "
             "is one call into `lipsync_core.front.notebook`. No GPU is needed, and nothing is downloaded unless "
             "you pick the `anime` detector (OpenCV's anime-face cascade, a small file).", "",
             "**The mouth chart.** `auto` takes the distinct mouth drawings the clip shows and names each by its "
             "shape; the mouth cell shows them as a contact sheet (a shape the clip lacks shows the nearest one, "
             "marked `A=X`). For a still image, or a clip with fewer than three mouth drawings, upload your own: a "
             "zip of `A.png` ... `H.png`, `X.png` (any size, transparency respected); at least one closed (A or "
             "X) and one open (C or D) drawing.", "",
             f"Source code, issues and the command-line tool (`lipsync --variant chart`): <{REPO_URL}>."]
    return "\n".join(parts)


def animation_inputs_cell() -> str:
    lines = ["#@markdown **face**: the cartoon clip or still image; leave empty to upload it, or give",
             f"#@markdown {_SOURCES_HELP}.",
             param("face", ""),
             "#@markdown Use only part of the clip (seconds or mm:ss; empty = from the start / to the end):",
             param("start", ""), param("end", ""),
             "#@markdown **audio**: the new speech; the same kinds of sources, empty to upload, `record` to record",
             "#@markdown in the browser (Colab), `same` to keep the clip's own sound.",
             param("audio", ""), param("audio_start", ""), param("audio_end", ""),
             "#@markdown **cookies**: only if YouTube asks you to sign in: a `cookies.txt` exported from your",
             "#@markdown browser (its path, or `upload`).",
             param("cookies", "")]
    code = call("job.set_inputs", ["start", "end", "audio_start", "audio_end", "cookies"], ("face", "audio"))
    return form("2. Inputs", lines, code)


def transcript_cell() -> str:
    lines = ["#@markdown Optional: what the speech says. Its words are aligned to the speech, which places the",
             "#@markdown mouth shapes far more accurately than recognising them. Type the words, give the path of a",
             "#@markdown `.txt` file, or `upload` one; empty: the words are recognised.",
             param("transcript", "")]
    return form("3. Transcript", lines, "job.set_transcript(transcript)")


def mouth_cell() -> str:
    cfg = make_config(ANIMATION.variant)
    lines = ["#@markdown **mouth_chart**: `auto` (the drawings the clip shows), `upload` (a zip of `A.png` ...",
             "#@markdown `X.png`), or the path of such a folder or zip (e.g. in your Drive).",
             param("mouth_chart", cfg.mouth_chart, choices(("auto", "upload"), allow_input=True)),
             "#@markdown **mouth_box**: where the mouth is, in pixels of the clip: `TOP BOTTOM LEFT RIGHT`, on the",
             "#@markdown first frame, or add `@SECONDS` for another frame; several keyframes separated by `;`.",
             "#@markdown It is followed through the clip (with the face when a detector is picked).",
             param("mouth_box", ""),
             "#@markdown **detector**: `none` follows the area around the mouth box; `anime` finds the face in",
             "#@markdown every frame (anime/manga faces) and places the mouth in it.",
             param("detector", "none", choices(("none", *CATALOG.detectors))),
             "#@markdown **hold_frames**: animate on ones, twos or threes (each drawing held that many frames).",
             param("hold_frames", cfg.hold_frames, slider(1, 3, 1)),
             "#@markdown **extended_shapes**: which of Rhubarb's extended shapes G, H, X the character has",
             "#@markdown (empty for none); **recognizer**: `pocketsphinx` (English words) or `phonetic` (any",
             "#@markdown language).",
             param("extended_shapes", cfg.extended_shapes),
             param("recognizer", cfg.recognizer, choices(RECOGNIZERS))]
    code = call("chart = job.set_chart", names(lines))
    return form("4. Mouth chart", lines, code)


def animation_run_cell() -> str:
    lines = ["#@markdown Re-dubs the clip, then shows the video with a download button, and the mouth cues as",
             "#@markdown files for animation programs: JSON, TSV and XML (Rhubarb Lip Sync's formats) and Moho",
             "#@markdown switch data (`.dat`, at `dat_fps` frames per second; `preston_blair` names the shapes",
             "#@markdown MBP, etc, E, AI, O, U, FV, L, rest).",
             param("dat_fps", 24), param("preston_blair", False),
             f"#@markdown Tick to also copy the video and the cue files to your Google Drive "
             f"(`MyDrive/{DRIVE_RESULTS_FOLDER}`):",
             param("copy_to_drive", False)]
    code = ("result = job.run(copy_to_drive=copy_to_drive)\n"
            + call("cues = job.cue_files", ["dat_fps", "preston_blair", "copy_to_drive"]))
    return form("5. Re-dub", lines, code)


# -- notebooks -----------------------------------------------------------------------------------------------------
def build(spec: Spec, manifest: Manifest) -> nbformat.NotebookNode:
    """The notebook for ``spec`` (no outputs)."""
    v4 = nbformat.v4

    def code(cell_id: str, source: str) -> nbformat.NotebookNode:
        return v4.new_code_cell(source, id=cell_id, metadata={"cellView": "form"})

    if spec is FINETUNE:
        first = finetune_intro(manifest)
    else:
        first = animation_intro() if spec is ANIMATION else intro(spec, manifest)
    cells = [v4.new_markdown_cell(first, id="intro"), code("setup", setup_cell(spec))]
    if spec is FINETUNE:
        cells += [code("workspace", workspace_cell()), code("clips", clips_cell()), code("train", train_cell()),
                  code("compare", compare_cell())]
    elif spec is ANIMATION:
        cells += [code("inputs", animation_inputs_cell()), code("transcript", transcript_cell()),
                  code("mouth", mouth_cell()), code("run", animation_run_cell())]
    elif spec is SIMPLE:
        cells += [code("inputs", simple_inputs_cell()), code("run", simple_run_cell())]
    else:
        cells += [code("weights", weights_cell(spec, manifest)), code("inputs", inputs_cell()),
                  code("settings", settings_cell(spec)), code("face-box", box_cell()),
                  code("run", run_cell(6))]
    nb = v4.new_notebook(cells=cells, metadata={
        "accelerator": "GPU",
        "colab": {"gpuType": "T4", "provenance": [], "name": spec.file},
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    nbformat.validate(nb)
    return nb


def render_all(manifest_path: Path = MANIFEST) -> dict[str, str]:
    """``{file name: notebook JSON}`` for the whole suite, built against ``manifest_path``."""
    manifest = load_manifest(manifest_path)
    return {spec.file: nbformat.writes(build(spec, manifest)) + "\n" for spec in ALL}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a notebook is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = HERE / name
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    print(f"{verb}: {', '.join(stale)}" if stale else "all notebooks up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
