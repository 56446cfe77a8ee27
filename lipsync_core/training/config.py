"""Settings of a training run (``lipsync train run``), with the fine-tuning defaults and why they were chosen.

The defaults are for fine-tuning a released generator on one person's footage. The evidence is in
``reference/training/finetune_notes.md`` (community reports; none is a controlled result), so each choice
below says what it rests on:

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
* **5000 steps at batch 16, validation every 250, early stop after 8 validations without a better
  validation sync loss**, the best checkpoint kept: about 4-5 passes over an hour of footage. No thread gives a
  step count for a successful one-person fine-tune; over-fitting is reported (#71, #208), hence the held-out
  clips, early stopping and keeping the best rather than the last checkpoint.
* **The expert in eval mode**: the original leaves it in training mode (its BatchNorm normalises with each
  batch's statistics, so a clip's sync loss depends on the other clips in its batch, and updates the expert's
  running statistics). ``expert_batch_stats`` restores that for parity.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import LipsyncError

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


@dataclass
class TrainConfig:
    """Every setting of ``lipsync train run``; field names are the CLI flags."""

    dataset: str = ""
    out: str = "lipsync_train"
    # Weights by role: a manifest id, local path, URL or Drive ID; None = the role's default.
    checkpoint_path: str | None = None  # generator to start from (--init): wav2lip, or wav2lip_gan with --gan
    expert_path: str | None = None  # the frozen lip-sync expert: lipsync_expert
    disc_path: str | None = None  # the visual quality discriminator (--gan): visual_quality_disc
    gan: bool = False  # train as hq_wav2lip_train.py: adversarial term and discriminator
    steps: int = 5000  # total optimizer steps of the run (a resumed run stops at the same total)
    batch_size: int = 16
    lr: float = 1e-5
    disc_lr: float = 1e-5
    sync_wt: float | None = None  # None: 0.01, or 0.03 with --gan
    disc_wt: float = DISC_WT
    sync_warmup: bool = False  # start with the sync loss off, on after a validation below 0.75 (the original)
    freeze: tuple[str, ...] = ("audio_encoder",)
    eval_interval: int = 250  # validation and checkpoint every this many steps, and at the end
    val_windows: int = 128  # held-out windows per validation (fixed, so validations compare)
    patience: int = 8  # stop after this many validations without a lower validation sync loss (0: never)
    keep_checkpoints: int = 2  # periodic checkpoints kept (the best one is kept apart)
    log_interval: int = 25
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # float16 autocast on CUDA
    workers: int = 2  # threads loading frames
    resume: bool = False  # continue the run in --out from its last checkpoint
    expert_batch_stats: bool = False  # the original's training-mode expert (parity only)
    progress: bool = True

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

    def validate(self) -> TrainConfig:
        """Check value ranges; raises LipsyncError naming the flag."""
        checks = [
            (bool(self.dataset), "give the dataset folder made by `lipsync train prepare`"),
            (self.steps >= 1, "--steps must be at least 1"),
            (self.batch_size >= 1, "--batch_size must be at least 1"),
            (self.lr > 0 and self.disc_lr > 0, "--lr and --disc_lr must be positive"),
            (0 <= self.sync_weight < 1 and 0 <= self.disc_weight < 1 and self.sync_weight + self.disc_weight < 1,
             "--sync_wt and --disc_wt must be >= 0 and leave a positive weight for L1"),
            (all(f in FREEZABLE for f in self.freeze), f"--freeze takes parts among {', '.join(FREEZABLE)}"),
            (self.eval_interval >= 1 and self.log_interval >= 1, "--eval_interval and --log_interval must be >= 1"),
            (self.val_windows >= 1, "--val_windows must be at least 1"),
            (self.patience >= 0 and self.keep_checkpoints >= 1, "--patience >= 0 and --keep_checkpoints >= 1"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
             "--device must be auto, cpu, cuda or cuda:N"),
            (self.workers >= 1, "--workers must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise LipsyncError(message)
        return self
