"""Settings of a training run (``lipsync train run``), with the fine-tuning defaults and why they were chosen.

The defaults are for fine-tuning a released generator on one person's footage. The evidence is what people
reported in the original's issue tracker (Rudrabha/Wav2Lip issues, cited as #n) and in ports of it; none of it
is a controlled result, so each choice below says what it rests on:

* **Start from a released generator** (``wav2lip``; ``wav2lip_gan`` with ``--gan``) and the released expert,
  frozen: the only starting point with positive reports (#61, #257); training from scratch stalled.
* **Learning rate 1e-5** for the generator and the discriminator, constant: the rate the authors' own GAN run
  had reached (stored in ``wav2lip_gan.pth``), 10x below the from-scratch 1e-4. Large steps on an hour of one
  person are the likeliest way to the reported failures (a mouth that stops moving, sync loss exploding once on,
  GAN collapse). It is always taken from this config, also on resume.
* **Sync loss on from the first step** at the original weight (0.01; 0.03 with ``--gan``, which also gives the
  discriminator 0.07). The original starts every run at 0 and switches on only after a validation below 0.75 at
  a multiple of 3000 steps, which is how resumed fine-tunes ran without any sync loss (#411). ``sync_warmup``
  restores the original's switch for a generator that is not in sync yet.
* **Audio encoder frozen** (``freeze``): it holds the speaker-independent audio-to-mouth mapping learned from
  ~29 h of LRS2; an hour of one voice cannot improve it, and over-fitting it is a path to the audio being
  ignored (#336). The face encoder and decoder adapt to the person's face, teeth and beard.
* **5000 steps at batch 16, validation every 500, early stop after 5 validations without a lower
  validation sync loss**, the best checkpoint kept: 400,000 frames seen, about 4-5 passes over an hour of footage
  (90,000 frames). No thread gives a step count for a successful one-person fine-tune; over-fitting is reported
  (#71, #208), hence the held-out clips, early stopping and keeping the best rather than the last checkpoint.
* **The expert in eval mode**: the original leaves it in training mode (its BatchNorm normalises with each
  batch's statistics, so a clip's sync loss depends on the other clips in its batch, and updates the expert's
  running statistics). ``expert_batch_stats`` restores that for parity.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..engine.catalog import CATALOG, Role
from ..support.errors import LipsyncError
from ..support.options import check_option, opt

#: The original's loss weights: syncnet_wt once switched on (wav2lip_train.py / hq_wav2lip_train.py), disc_wt.
SYNC_WT = 0.01
SYNC_WT_GAN = 0.03
DISC_WT = 0.07
#: The original's switch: the sync loss goes on at the first validation whose mean sync loss is below this.
SYNC_SWITCH_BELOW = 0.75
#: Adam betas of the original scripts: wav2lip_train.py (defaults) and hq_wav2lip_train.py (G and D).
BETAS = (0.9, 0.999)
BETAS_GAN = (0.5, 0.999)
#: Generator parts that may be frozen.
FREEZABLE = ("audio_encoder", "face_encoder_blocks", "face_decoder_blocks")

#: The weights of a training run by role (flag ``--<role>_path``); all but the discriminator are a run's roles too.
ROLES = {r.name: r for r in (
    CATALOG.roles["checkpoint"],
    CATALOG.roles["expert"],
    Role("disc", "the visual quality discriminator trained with --gan (Wav2Lip_disc_qual)", "visual_quality_disc"),
    CATALOG.roles["syncnet"],
)}

_W = "weights and schedule"
_L = "loop, validation and checkpoints"
_R = "runtime"


def _pos(v: float) -> bool:
    return v > 0


@dataclass
class TrainConfig:
    """Every setting of ``lipsync train run``; field names are the CLI flags (weights: ``<role>_path``)."""

    dataset: str = ""  # the folder `lipsync train prepare` wrote (positional on the command line)
    out: str = opt("lipsync_train", "folder for checkpoints and metrics.jsonl (use a Drive folder on Colab)", _L)
    checkpoint_path: str | None = None  # the generator to start from (--init); None: wav2lip, wav2lip_gan with --gan
    expert_path: str | None = None
    disc_path: str | None = None
    syncnet_path: str | None = None  # SyncNet v2 for the rendered validation check
    gan: bool = opt(False, "train as hq_wav2lip_train.py: adversarial term and the visual quality discriminator", _W)
    steps: int = opt(5000, "total optimizer steps (a resumed run stops at the same total)", _L, check=_pos,
                     message="--steps must be at least 1")
    batch_size: int = opt(16, "windows per step (the original's)", _W, check=_pos,
                          message="--batch_size must be at least 1")
    lr: float = opt(1e-5, "generator learning rate, constant (also on resume)", _W, check=_pos,
                    message="--lr must be positive")
    disc_lr: float = opt(1e-5, "discriminator learning rate (--gan)", _W, check=_pos,
                         message="--disc_lr must be positive")
    sync_wt: float | None = opt(None, "sync-loss weight (unset: 0.01, or 0.03 with --gan)", _W,
                                check=lambda v: 0 <= v < 1, message="--sync_wt must be in [0, 1)")
    disc_wt: float = opt(DISC_WT, "adversarial weight with --gan", _W, check=lambda v: 0 <= v < 1,
                         message="--disc_wt must be in [0, 1)")
    sync_warmup: bool = opt(False, "start without the sync loss and switch it on at the first validation below "
                            "0.75 (the original's schedule, for a generator not yet in sync)", _W)
    freeze: tuple[str, ...] = opt(("audio_encoder",), "generator parts that do not train", _W,
                                  choices=FREEZABLE)
    eval_interval: int = opt(500, "validate and checkpoint every this many steps (and at the end)", _L, check=_pos,
                             message="--eval_interval must be at least 1")
    val_windows: int = opt(128, "held-out windows per validation (the same ones each time)", _L, check=_pos,
                           message="--val_windows must be at least 1")
    patience: int = opt(5, "stop after this many validations without a lower sync loss; 0 = never", _L,
                        check=lambda v: v >= 0, message="--patience must be >= 0")
    keep_checkpoints: int = opt(2, "periodic checkpoints kept (the best is kept apart)", _L, check=_pos,
                                message="--keep_checkpoints must be at least 1")
    log_interval: int = opt(25, "log the mean losses every this many steps", _L, check=_pos,
                            message="--log_interval must be at least 1")
    no_render_check: bool = opt(False, "skip the rendered check at each validation (a held-out clip lip-synced "
                                "through the real pipeline and scored by SyncNet: LSE-C)", _L)
    resume: bool = opt(False, "continue the run in --out from its last checkpoint (a new run if there is none)", _L)
    seed: int = opt(0, "seed of the data order", _L)
    device: str = opt("auto", "auto, cpu, cuda or cuda:N", _R,
                      check=lambda v: v in ("auto", "cpu", "cuda") or v.startswith("cuda:"),
                      message="--device must be auto, cpu, cuda or cuda:N")
    no_amp: bool = opt(False, "compute in float32 on CUDA too (default: float16 autocast there)", _R)
    workers: int = opt(2, "threads loading frames", _R, check=_pos, message="--workers must be at least 1")
    cache_dir: str | None = opt(None, "cache folder for weights (default: ~/.cache/lipsync)", _R)
    no_progress: bool = opt(False, "no progress bar", _R)
    expert_batch_stats: bool = False  # the original's training-mode expert (parity checks only; not a flag)

    @property
    def sync_weight(self) -> float:
        """The sync-loss weight when on."""
        if self.sync_wt is not None:
            return self.sync_wt
        return SYNC_WT_GAN if self.gan else SYNC_WT

    @property
    def disc_weight(self) -> float:
        return self.disc_wt if self.gan else 0.0

    @property
    def betas(self) -> tuple[float, float]:
        return BETAS_GAN if self.gan else BETAS

    @property
    def progress(self) -> bool:
        return not self.no_progress

    def weight_source(self, role: str) -> str | None:
        return getattr(self, ROLES[role].option)

    def validate(self) -> TrainConfig:
        """Check every option's value (the fields' checks, then the combinations); raises LipsyncError."""
        if not self.dataset:
            raise LipsyncError("give the dataset folder made by `lipsync train prepare`")
        check_fields(self)
        if any(f not in FREEZABLE for f in self.freeze):
            raise LipsyncError(f"--freeze takes parts among {', '.join(FREEZABLE)}")
        if self.sync_weight + self.disc_weight >= 1:
            raise LipsyncError("--sync_wt and --disc_wt must leave a positive weight for L1")
        return self


def check_fields(obj: object) -> None:
    """Each ``opt`` field's check (and that floats are finite), raising the field's one-line message."""
    for f in fields(obj):  # type: ignore[arg-type]
        if "help" in f.metadata:
            check_option(f, getattr(obj, f.name))
