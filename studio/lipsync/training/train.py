"""Training an actor model: the sync expert first, then the generator against the frozen expert.

Follows the published recipe as a starting point: expert = BCE on the cosine similarity of synced vs shifted
windows; generator = (1 - s - g) * L1 + s * sync loss + g * visual-quality GAN loss (s and g join after a warm-up;
g = ``gan_weight`` is optional, 0 = off; the published recipe uses s = 0.03, g = 0.07), Adam lr 1e-4, betas
(0.5, 0.999); the discriminator (lower-half real/fake, BCE) trains alongside the generator when g > 0. The compact
``cpu`` preset departs from it where a 2-core CPU measured better: lr 1e-3 with cosine decay, and an expert that
meets K shifted audio windows per video window. Runs stop after a time budget or step count with a full checkpoint
(models, optimisers, step counters, sampler RNG) and resume exactly from it, on this machine or another.

When is a model ready? (:func:`readiness`) A model is *ready* (usable with ``--model``) once its generator has done
``min_generator_steps`` steps, however few steps the run planned (a run told to stop earlier, e.g. ``--steps 10``,
is saved unfinished and its resume hint asks for more steps); before that it is *unfinished*: its generator has not learnt
to rebuild the lower face yet (at step 0 it paints a skin-coloured blob over the mouth), so lip-sync refuses it
and says how to resume it. The expert's steps do not count. The presets put the minimum past the generator's
L1-only warm-up, so that the sync loss has acted on it (cpu: 1000 of 4000, about 10 min on a 2-core CPU; gpu:
2000 of 8000; debug: 2 of 4); a fine-tune (``--init``) starts from a trained generator and is ready at any step.
``Trainer.save`` writes ``ready``, ``ready_reason``, ``generator_steps`` (planned) and ``min_generator_steps``
(the minimum that applies) into the checkpoint's metadata; checkpoints without ``ready`` (older ones, e.g. the
bundled s1) count as ready.

Time budget (``minutes``): when both phases remain, the expert gets at most a share of the minutes, the fraction
of the remaining steps that are expert steps capped at half (:meth:`TrainConfig.expert_share`), and then the
generator takes the rest, so a short budget never ends with an untouched generator. The generator never trains
against an unfinished expert, though: when it reaches the end of its L1-only warm-up (``sync_warmup``) while expert
steps remain, the expert takes over again until it is done (a fine-tune, with the sync loss from its first step,
thus trains its expert first, whatever the budget). A resumed run starts with the expert's remaining steps.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ...checkpoints import save_checkpoint
from ...log import get_logger
from ...progress import Progress
from .sampler import lower_halves

log = get_logger("training")

GRID_ATTRIBUTION = ("Trained on the GRID audio-visual corpus, speaker s1 (Cooke, Barker, Cunningham & Shao, 2006), "
                    "CC BY 4.0")


@dataclass(frozen=True)
class TrainConfig:
    img_size: int = 96
    width: float = 0.5  # channel multiplier: 0.5 keeps an fp16 generator under 20 MB
    expert_steps: int = 3000
    generator_steps: int = 6000
    batch_size: int = 32
    lr: float = 1e-4
    sync_weight: float = 0.03
    sync_warmup: int = 1000  # generator steps on L1 alone before the sync loss joins
    eval_every: int = 250
    seed: int = 0
    gan_weight: float = 0.0  # visual-quality discriminator loss weight (0 = off; 0.07 in the published recipe)
    # expert: 0 = the published sampling (one audio window per video window, half of them shifted); K > 0 = each
    # video window meets its own audio and K shifted windows of the same clip, so one (costly) video pass gives
    # K + 1 labelled pairs
    expert_negatives: int = 0
    lr_final: Optional[float] = None  # None = constant lr (published); else cosine decay to this over each phase
    # fraction of generator samples whose reference comes from another clip (0 = published: same clip); measured:
    # references from another clip cost the first s1 model 4.6 dB of mouth PSNR when it had only seen same-clip ones
    cross_clip_refs: float = 0.0
    # linear lr ramp over the first steps of each phase; fine-tuning uses it: a fresh Adam moves every weight by
    # about lr per step at first, which threw a trained s1 off (held-out L1 0.0125 -> 0.0163 in 100 steps at 5e-5)
    lr_warmup: int = 0
    # extra L1 weight inside the mouth box (from the prepared lip landmarks): 0 = plain L1 (published); w = mouth
    # pixels count 1 + w times. The lips are ~4 % of the crop, so plain L1 spends most of its signal on jaw and cheeks
    mouth_weight: float = 0.0
    # generator steps after which the model counts as ready to use (see the module docstring); not capped at
    # generator_steps: a run planned shorter than this ends unfinished rather than offering an untrained generator
    min_generator_steps: int = 1500
    val_batches: Optional[int] = None  # batches per validation; None = at least 4 and 64 windows
    # colour, scale, pose and flip augmentation of training windows (sampler.WindowSampler._augmented): the base
    # model trained on every person available uses it so that it meets new faces closer to them
    augment: bool = False

    def ready_after(self) -> int:
        """Generator steps after which a model trained with this config is ready (usable with --model)."""
        return max(0, self.min_generator_steps)

    def expert_share(self, expert_done: int, generator_done: int) -> float:
        """The most of a time budget the expert may use when both phases remain: its fraction of the remaining
        steps, at most one half."""
        expert_left = max(0, self.expert_steps - expert_done)
        generator_left = max(0, self.generator_steps - generator_done)
        if expert_left + generator_left == 0:
            return 0.0
        return min(0.5, expert_left / (expert_left + generator_left))

    def lr_at(self, step: int, steps: int) -> float:
        if self.lr_final is None or steps <= 0:
            lr = self.lr
        else:
            lr = self.lr_final + (self.lr - self.lr_final) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
        return lr * (step + 1) / self.lr_warmup if step < self.lr_warmup else lr

    @classmethod
    def preset(cls, name: str, **overrides) -> "TrainConfig":
        presets = {
            "debug": dict(img_size=96, width=0.125, expert_steps=4, generator_steps=4, batch_size=4, eval_every=4, lr=1e-3,
                          sync_warmup=2, min_generator_steps=2, val_batches=2),
            # measured on a 2-core CPU: lr 1e-3 (decayed) reaches in 2.5 min the generator L1 that 1e-4 reached in
            # an hour; K=4 shifted windows per video window halve the expert's time to 80 % accuracy; a sync weight
            # of 0.1 (instead of 0.03) with this small expert made sync far worse (correlation 0.43)
            "cpu": dict(width=0.25, expert_steps=2000, generator_steps=4000, batch_size=8, sync_warmup=600,
                        eval_every=100, lr=1e-3, lr_final=1e-4, expert_negatives=4, min_generator_steps=1000),
            # half of the references from other clips: fine-tuning s1 this way raised its mouth PSNR with references
            # from another clip from 26.3 to 29.4 dB at unchanged same-clip quality (30.0 after a second fine-tune);
            # mouth weight 3: a fine-tune of s1 with it raised mouth-opening correlation 0.843 -> 0.861 (the same
            # fine-tune without it: 0.841 -> 0.843)
            "gpu": dict(width=0.5, expert_steps=3000, generator_steps=8000, batch_size=64, sync_warmup=1500,
                        cross_clip_refs=0.5, mouth_weight=3.0, min_generator_steps=2000),
        }
        if name not in presets:
            from ...errors import InputError

            raise InputError(f"unknown training preset {name!r}; choose one of {', '.join(presets)}")
        return cls(**{**presets[name], **overrides})


def plain(value):
    """``value`` as plain Python types (str, int, float, bool, None, list, dict with str keys), which is what
    ``torch.load(weights_only=True)`` rebuilds: paths become str, numpy scalars and arrays Python numbers and
    lists, tuples lists, dataclasses dicts."""
    import dataclasses

    import numpy as np

    if isinstance(value, np.generic):  # before float: np.float64 is a float subclass, and pickles as numpy
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return type(value)(value) if value is not None else None
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} cannot be stored in a checkpoint's metadata")


def resume_command(name: str, planned=None, need=None) -> str:
    """The command that finishes an unfinished model: plain ``--resume``, plus ``--steps`` when the run's planned
    steps end before the model would be ready."""
    steps = f" --steps {int(need)}" if planned is not None and need is not None and int(planned) < int(need) else ""
    return f"`studio train --name {name} --resume{steps}`"


def readiness(config: TrainConfig, generator_step: int) -> dict:
    """Whether a model with this many generator steps is ready to use, and why (the rule is in the module
    docstring); plain types, stored in the checkpoint's metadata."""
    need, planned = config.ready_after(), config.generator_steps
    if generator_step < need:
        ready, reason = False, (f"unfinished: generator step {generator_step} of {planned}; a model is ready "
                                f"from generator step {need}")
    elif generator_step >= planned:
        ready, reason = True, f"finished: all {planned} generator steps done"
    else:
        ready, reason = True, (f"usable: generator step {generator_step} of {planned} (ready from step {need}); "
                               "resuming trains it further")
    return dict(ready=ready, ready_reason=reason, generator_steps=int(planned), min_generator_steps=int(need))


def _bce(pred, target):
    import torch
    import torch.nn.functional as F

    with torch.autocast(device_type=pred.device.type, enabled=False):  # BCE is not autocast-safe
        return F.binary_cross_entropy(pred.float().clamp(1e-6, 1 - 1e-6), target.float())


def weighted_l1(pred, target, mouth, mouth_weight: float):
    """Mean absolute error with pixels in the mouth mask (B, 1, T, S, S) weighted 1 + mouth_weight, normalised by
    the mean weight so the loss keeps the scale of plain L1 (weight 0 gives plain L1 exactly)."""
    w = 1 + mouth_weight * mouth
    return ((pred - target).abs() * w).mean() / w.mean()


def mouth_l1(pred, target, mouth):
    """L1 inside the mouth boxes only (the part of the face that lip-sync changes most)."""
    return float(((pred - target).abs() * mouth).sum() / (mouth.sum() * pred.shape[1]).clamp(min=1))


def sync_loss(expert, mel, faces_lower, labels):
    import torch.nn.functional as F

    a, v = expert(mel, faces_lower)
    return _bce(F.cosine_similarity(a, v).unsqueeze(1), labels)


class Trainer:
    """Holds models, optimisers and counters; ``run`` trains until the budget is spent or the steps are done."""

    def __init__(self, folder: Path, config: TrainConfig, train_sampler, val_sampler, device: str,
                 meta: Optional[dict] = None, init_generator: Optional[str] = None,
                 init_expert: Optional[str] = None):
        import torch

        from ..wav2lip.models import SyncNetColor, Wav2Lip

        self.folder, self.config, self.device = Path(folder), config, torch.device(device)
        self.train, self.val = train_sampler, val_sampler
        self.train.augment = config.augment  # validation windows stay as they are
        torch.manual_seed(config.seed)
        self.expert = SyncNetColor(config.img_size, config.width).to(self.device)
        self.generator = Wav2Lip(config.img_size, config.width).to(self.device)
        if init_generator:
            self._init_from(init_generator)
        if init_expert:
            self._init_expert_from(init_expert)
        if self.device.type == "cpu":  # oneDNN convolutions run ~1.3x faster on channels-last tensors (measured)
            for model in (self.expert, self.generator):
                model.to(memory_format=torch.channels_last)
        betas = (0.5, 0.999)
        self.opt_expert = torch.optim.Adam(self.expert.parameters(), lr=config.lr, betas=betas)
        self.opt_gen = torch.optim.Adam(self.generator.parameters(), lr=config.lr, betas=betas)
        self.disc = self.opt_disc = None
        if config.gan_weight > 0:
            from ..wav2lip.models import Wav2LipDiscQual

            self.disc = Wav2LipDiscQual(config.img_size, config.width).to(self.device)
            self.opt_disc = torch.optim.Adam(self.disc.parameters(), lr=config.lr, betas=betas)
        self.expert_step = self.gen_step = 0
        self.metrics: dict = {}
        self.meta = plain(dict(meta or {}))
        self._smoothed: dict = {}  # phase -> running averages of its training losses, for the progress label
        self._evaluated_at = (0, 0)  # (expert step, generator step) of the latest validation
        self.autocast = dict(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def _init_from(self, checkpoint: str) -> None:
        from ...checkpoints import load_checkpoint

        self._load_weights(self.generator, load_checkpoint(checkpoint), checkpoint, "generator",
                           "fine-tuning an official checkpoint needs --img-size 96 and width 1.0")

    def _init_expert_from(self, checkpoint: str) -> None:
        from ...checkpoints import load_checkpoint
        from ...errors import InputError

        loaded = load_checkpoint(checkpoint)
        if loaded.kind != "syncnet":
            raise InputError(f"{checkpoint} is a {loaded.kind} checkpoint; --init-expert takes a sync expert "
                             "(the expert.pt of a trained model)")
        self._load_weights(self.expert, loaded, checkpoint, "sync expert", "use the expert trained with this generator")

    def _load_weights(self, target, loaded, checkpoint: str, role: str, hint: str) -> None:
        """Copy a loaded checkpoint's weights into ``target``; a shape mismatch says what to give instead."""
        from ...checkpoints import build_model
        from ...errors import InputError

        try:
            target.load_state_dict(build_model(loaded).state_dict())
        except RuntimeError:
            raise InputError(f"the {role} {checkpoint} does not match img_size={self.config.img_size}, "
                             f"width={self.config.width}; {hint}") from None
        log.info("%s initialised from %s", role, checkpoint)

    # ---- state --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        import torch

        # tensors and plain Python values only, so that it loads with torch.load(weights_only=True)
        state = dict(config=plain(asdict(self.config)), expert=self.expert.state_dict(),
                     generator=self.generator.state_dict(), opt_expert=self.opt_expert.state_dict(),
                     opt_gen=self.opt_gen.state_dict(), expert_step=int(self.expert_step), gen_step=int(self.gen_step),
                     metrics=plain(self.metrics), meta=plain(self.meta), sampler=plain(self.train.state()),
                     torch_rng=torch.get_rng_state())
        if self.disc is not None:
            state.update(disc=self.disc.state_dict(), opt_disc=self.opt_disc.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        import torch

        self.expert.load_state_dict(state["expert"])
        self.generator.load_state_dict(state["generator"])
        self.opt_expert.load_state_dict(state["opt_expert"])
        self.opt_gen.load_state_dict(state["opt_gen"])
        if self.disc is not None and "disc" in state:
            self.disc.load_state_dict(state["disc"])
            self.opt_disc.load_state_dict(state["opt_disc"])
        self.expert_step, self.gen_step = state["expert_step"], state["gen_step"]
        self.metrics, self.meta = dict(state["metrics"]), dict(state["meta"])
        self.train.set_state(state["sampler"])
        torch.set_rng_state(state["torch_rng"].cpu())  # loaded with map_location, it may sit on the GPU

    def save(self) -> None:
        """state.pt (everything to resume) + model.pt and expert.pt (our checkpoint format, for use)."""
        import os
        import tempfile

        import torch

        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".state.", suffix=".partial")
        os.close(fd)
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.folder / "state.pt")
        meta = plain(dict(self.meta, train_config=asdict(self.config), step=self.gen_step,
                          expert_step=self.expert_step, metrics=self.metrics, **self.readiness()))
        save_checkpoint(self.folder / "model.pt", kind="wav2lip", arch=self.generator.config,
                        state_dict=self.generator.state_dict(), meta=meta, half=True)
        save_checkpoint(self.folder / "expert.pt", kind="syncnet", arch=self.expert.config,
                        state_dict=self.expert.state_dict(), meta=meta, half=True)
        if self.disc is not None:
            save_checkpoint(self.folder / "disc.pt", kind="disc", arch=self.disc.config,
                            state_dict=self.disc.state_dict(), meta=meta, half=True)

    def readiness(self) -> dict:
        """``ready`` (bool), ``ready_reason`` and the step numbers behind them (see :func:`readiness`)."""
        return readiness(self.config, self.gen_step)

    def _log(self, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "train.log", "a") as f:
            f.write(json.dumps(dict(time=time.strftime("%Y-%m-%d %H:%M:%S"), **record)) + "\n")

    # ---- steps ---------------------------------------------------------------------------------------------
    def expert_train_step(self) -> float:
        import torch

        self.expert.train()
        k = self.config.expert_negatives
        if k > 0:
            mel, faces = self.train.sync_contrast_batch(self.config.batch_size, k)  # (B, 1+K, 1, 80, 16)
            b = len(faces)
            with torch.autocast(**self.autocast):
                v = self.expert.embed_faces(faces)
                a = self.expert.embed_audio(mel.flatten(0, 1)).view(b, k + 1, -1)
            d = torch.nn.functional.cosine_similarity(a.float(), v.float()[:, None], dim=2)  # (B, 1+K)
            # synced and shifted pairs weigh the same, as in the published 50/50 sampling
            loss = 0.5 * _bce(d[:, :1], torch.ones_like(d[:, :1])) + 0.5 * _bce(d[:, 1:], torch.zeros_like(d[:, 1:]))
        else:
            mel, faces, labels = self.train.sync_batch(self.config.batch_size)
            with torch.autocast(**self.autocast):
                a, v = self.expert(mel, faces)
            loss = _bce(torch.nn.functional.cosine_similarity(a.float(), v.float()).unsqueeze(1), labels)
        self._set_lr(self.opt_expert, self.config.lr_at(self.expert_step, self.config.expert_steps))
        self.opt_expert.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_expert.step()
        self.expert_step += 1
        return float(loss.detach())

    @staticmethod
    def _set_lr(optimiser, lr: float) -> None:
        for group in optimiser.param_groups:
            group["lr"] = lr

    def sync_weight(self) -> float:
        return self.config.sync_weight if self.gen_step >= self.config.sync_warmup else 0.0

    def generator_train_step(self) -> dict:
        import torch

        self.generator.train()
        self.expert.eval()
        ind, x, gt, mel, mouth = self.train.gen_batch(self.config.batch_size, self.config.cross_clip_refs)
        with torch.autocast(**self.autocast):
            pred = self.generator(ind, x)
        pred = pred.float()
        l1 = torch.nn.functional.l1_loss(pred, gt)
        rec = weighted_l1(pred, gt, mouth, self.config.mouth_weight) if self.config.mouth_weight > 0 else l1
        sw = self.sync_weight()
        if sw > 0:
            for p in self.expert.parameters():
                p.requires_grad_(False)
            with torch.autocast(**self.autocast):
                a, v = self.expert(mel, lower_halves(pred))
            sync = _bce(torch.nn.functional.cosine_similarity(a.float(), v.float()).unsqueeze(1),
                        torch.ones(len(pred), 1, device=pred.device))
        else:
            sync = torch.zeros((), device=pred.device)
        gw = self.gan_weight()
        if gw > 0:  # the generator wants the discriminator to call its faces real
            for p in self.disc.parameters():
                p.requires_grad_(False)
            with torch.autocast(**self.autocast):
                fake_score = self.disc(pred)
            gan = _bce(fake_score, torch.ones_like(fake_score))
        else:
            gan = torch.zeros((), device=pred.device)
        loss = (1 - sw - gw) * rec + sw * sync + gw * gan
        lr = self.config.lr_at(self.gen_step, self.config.generator_steps)
        self._set_lr(self.opt_gen, lr)
        if self.opt_disc is not None:
            self._set_lr(self.opt_disc, lr)
        self.opt_gen.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_gen.step()
        self.gen_step += 1
        out = dict(l1=float(l1.detach()), sync=float(sync.detach()), loss=float(loss.detach()))
        if self.disc is not None:
            out.update(gan=float(gan.detach()), disc=self.disc_train_step(pred.detach(), gt))
        return out

    def gan_weight(self) -> float:
        return self.config.gan_weight if self.gen_step >= self.config.sync_warmup else 0.0

    def disc_train_step(self, fake, real) -> float:
        """One discriminator update: real lower halves -> 1, generated ones -> 0."""
        import torch

        self.disc.train()
        for p in self.disc.parameters():
            p.requires_grad_(True)
        with torch.autocast(**self.autocast):
            real_score, fake_score = self.disc(real), self.disc(fake)
        loss = _bce(real_score, torch.ones_like(real_score)) + _bce(fake_score, torch.zeros_like(fake_score))
        self.opt_disc.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_disc.step()
        return float(loss.detach())

    def evaluate(self, batches: Optional[int] = None) -> dict:
        """Validation on held-out clips with a fixed seed: expert loss and accuracy, generator L1 (references from
        the same clip, and ``val_l1_cross`` with references from another clip; ``val_l1_mouth`` inside the mouth
        boxes, same-clip references) and sync loss (``val_batches`` batches, by default
        at least 64 windows, so small training batches do not make the numbers jump)."""
        import torch

        batches = batches or self.config.val_batches or max(4, -(-64 // self.config.batch_size))
        state = self.val.state()
        self.val.rng = __import__("numpy").random.default_rng(1234)
        self.expert.eval()
        self.generator.eval()
        exp_loss = acc = l1 = l1_cross = l1_mouth = sync = 0.0
        with torch.no_grad(), torch.autocast(**self.autocast):
            for _ in range(batches):
                mel, faces, labels = self.val.sync_batch(self.config.batch_size)
                a, v = self.expert(mel, faces)
                d = torch.nn.functional.cosine_similarity(a.float(), v.float()).unsqueeze(1)
                exp_loss += float(_bce(d, labels))
                acc += float(((d > 0.5).float() == labels).float().mean())
                ind, x, gt, _, _ = self.val.gen_batch(self.config.batch_size, cross_clip=1.0)
                l1_cross += float(torch.nn.functional.l1_loss(self.generator(ind, x).float(), gt))
                ind, x, gt, mel2, mouth = self.val.gen_batch(self.config.batch_size)
                pred = self.generator(ind, x).float()
                l1 += float(torch.nn.functional.l1_loss(pred, gt))
                l1_mouth += mouth_l1(pred, gt, mouth)
                a, v = self.expert(mel2, lower_halves(pred))
                d = torch.nn.functional.cosine_similarity(a.float(), v.float()).unsqueeze(1)
                sync += float(_bce(d, torch.ones_like(d)))
        self.val.set_state(state)
        return dict(val_expert_loss=exp_loss / batches, val_expert_acc=acc / batches, val_l1=l1 / batches,
                    val_l1_cross=l1_cross / batches, val_l1_mouth=l1_mouth / batches, val_sync_loss=sync / batches)

    def generator_waits(self) -> bool:
        """Whether the generator must wait for the expert: expert steps remain and the generator's next step would
        use the sync loss (its L1-only warm-up is over), which needs a finished expert."""
        return self.expert_step < self.config.expert_steps and self.gen_step >= self.config.sync_warmup

    def _smooth(self, phase: str, values: dict) -> None:
        """Running averages (over about the last 10 steps) of a phase's training losses."""
        smoothed = self._smoothed.setdefault(phase, {})
        for k, v in values.items():
            if isinstance(v, float):
                smoothed[k] = v if k not in smoothed else 0.9 * smoothed[k] + 0.1 * v

    def stage_label(self, phase: Optional[str] = None) -> str:
        """The progress stage: the phase, its training losses (running averages) and the latest validation
        numbers, e.g. "generator · L1 0.0512, sync 0.693 · val: expert acc 0.81, L1 0.0490, sync loss 0.702". The
        text before the first " · " names the stage (the CLI keeps one bar per phase); the rest changes live."""
        phase = phase or ("expert" if self.expert_step < self.config.expert_steps else "generator")
        s, m = self._smoothed.get(phase, {}), self.metrics
        parts = [phase]
        if phase == "expert":
            if "expert_loss" in s:
                parts.append(f"loss {s['expert_loss']:.3f}")
            if m:
                parts.append(f"val: expert acc {m['val_expert_acc']:.2f}, loss {m['val_expert_loss']:.3f}")
        else:
            if "l1" in s:
                parts.append(f"L1 {s['l1']:.4f}, sync {s['sync']:.3f}"
                             + (f", gan {s['gan']:.3f}, disc {s['disc']:.3f}" if "gan" in s else ""))
            if m:
                parts.append(f"val: expert acc {m['val_expert_acc']:.2f}, L1 {m['val_l1']:.4f}, "
                             f"sync loss {m['val_sync_loss']:.3f}")
        return " · ".join(parts)

    def _evaluate_and_log(self, last: dict, **extra) -> None:
        """A train.log record with the step's training losses and a new validation."""
        self.metrics = self.evaluate()
        self._evaluated_at = (self.expert_step, self.gen_step)
        self._log(dict(expert_step=self.expert_step, gen_step=self.gen_step, **extra, **last, **self.metrics))

    def _log_losses(self, last: dict, **extra) -> None:
        """A train.log record with the step's training losses only (no validation: it costs several steps)."""
        self._log(dict(expert_step=self.expert_step, gen_step=self.gen_step, **extra, **last))

    def run(self, minutes: Optional[float] = None, progress: Progress | None = None) -> dict:
        """Train until both phases are done or ``minutes`` have passed; saves a checkpoint at the end.

        With ``minutes`` and both phases left, the expert stops at its share of the budget
        (:meth:`TrainConfig.expert_share`) and the generator gets the rest, except that the generator waits for
        the expert once its L1-only warm-up is over (:meth:`generator_waits`). ``train.log`` gets a record with
        the training losses at the first step of each phase and when the expert's share is spent, and one with a
        validation as well every ``eval_every`` steps of a phase, at the end of a phase and when the budget stops the
        run (so the saved model's metrics are its own)."""
        progress = Progress.of(progress)
        cfg = self.config
        start = time.monotonic()
        deadline = None if minutes is None else start + minutes * 60
        expert_deadline = deadline
        if (deadline is not None and self.expert_step < cfg.expert_steps and self.gen_step < cfg.generator_steps
                and not self.generator_waits()):
            share = cfg.expert_share(self.expert_step, self.gen_step)
            expert_deadline = start + minutes * 60 * share
            log.info("time budget: %.1f min, of which the expert may use %.1f min (%.0f %%)", minutes,
                     minutes * share, 100 * share)
        self._evaluated_at = (self.expert_step, self.gen_step)
        expert_cut = False
        last: dict = {}
        try:
            while True:
                generator_done = self.gen_step >= cfg.generator_steps
                expert_phase = self.expert_step < cfg.expert_steps and (
                    not expert_cut or generator_done or self.generator_waits())
                if not expert_phase and generator_done:
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    log.info("time budget spent at expert step %d, generator step %d", self.expert_step, self.gen_step)
                    if self._evaluated_at != (self.expert_step, self.gen_step):
                        self._evaluate_and_log(last, event="time budget spent")
                    break
                if (expert_phase and not expert_cut and not generator_done and not self.generator_waits()
                        and expert_deadline is not None and now >= expert_deadline):
                    expert_cut = True  # its share of the budget is spent: on to the generator
                    log.info("the expert's share of the time budget is spent at expert step %d of %d; "
                             "on to the generator", self.expert_step, cfg.expert_steps)
                    self._log_losses(last, event="expert's share of the time budget spent")
                    continue
                if expert_phase:
                    last = dict(phase="expert", expert_loss=self.expert_train_step())
                    step, steps = self.expert_step, cfg.expert_steps
                else:
                    last = dict(phase="generator", **self.generator_train_step())
                    step, steps = self.gen_step, cfg.generator_steps
                self._smooth(last["phase"], last)
                if step % cfg.eval_every == 0 or step == steps:
                    self._evaluate_and_log(last)
                elif step == 1:  # train.log from the first step
                    self._log_losses(last)
                progress.update(self.stage_label(last["phase"]), step, steps)
        finally:
            self.save()
        return dict(last, **self.metrics)
