"""Actor models for the API and the CLI: train, resume, list.

    studio train --name s1 --footage ../shared/data/grid-s1/clips --minutes 10
    studio train --name s1 --resume
    studio lipsync --model s1 --face clip.mp4 --audio other.wav -o out.mp4

A model lives in ``studio.paths.models_dir() / NAME``: model.pt (the generator, our checkpoint format, usable by
name), expert.pt (the sync expert), state.pt (everything needed to resume), train.log (losses and validation
numbers, one JSON line per evaluation, from the first step of each phase) and run.json (the options and the
data's location and fingerprint).

A model whose generator has not done enough steps is saved *unfinished* (the rule: ``train.readiness``):
``TrainResult.describe`` and ``studio models`` say so and how to resume it, and the wav2lip engine refuses it.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

from ...errors import InputError
from ...log import get_logger
from ...paths import BUNDLED_CHECKPOINTS, models_dir
from ...progress import Progress
from ...trust.consent import TRAIN_PURPOSE, check_consent
from .dataset import prepare_dataset
from .train import TrainConfig, Trainer, resume_command

log = get_logger("training")


@dataclass(frozen=True)
class TrainOptions:
    name: str
    footage: tuple = ()  # folders or video files; empty when resuming
    minutes: Optional[float] = None  # stop (with a checkpoint) after this long; None = until the steps are done
    device: str = "auto"
    preset: Optional[str] = None  # "gpu", "cpu" or "debug"; default: gpu on CUDA, else cpu
    img_size: Optional[int] = None
    steps: Optional[int] = None  # generator steps (overrides the preset; with resume: the run's new length)
    expert_steps: Optional[int] = None
    gan_weight: Optional[float] = None  # visual-quality GAN loss weight (overrides the preset; 0 = off)
    resume: bool = False
    init: Optional[str] = None  # fine-tune from this generator checkpoint
    init_expert: Optional[str] = None  # start from this sync expert (expert steps default to 0 then)
    lr: Optional[float] = None  # starting learning rate (overrides the preset; a decaying preset ends at lr / 10)
    cross_clip_refs: Optional[float] = None  # fraction of references from another clip (overrides the preset)
    mouth_weight: Optional[float] = None  # extra L1 weight inside the mouth box (overrides the preset; 0 = off)
    footage_minutes: Optional[float] = None  # use at most this much footage
    attribution: str = ""
    # who agreed to have a model trained on their face, and when (studio.trust.consent); required for a new run,
    # stored in the checkpoints' metadata; a resumed run reuses the stored one
    consent: Optional[str] = None
    # the consent covers footage that carries the studio's video mark (renders); refused otherwise (no laundering)
    consent_covers_marked: bool = False


@dataclass(frozen=True)
class TrainResult:
    name: str
    folder: Path
    expert_step: int
    generator_step: int
    metrics: dict = field(default_factory=dict)
    dataset: str = ""
    ready: bool = True  # False: unfinished, lip-sync refuses it until it is resumed (see train.readiness)
    expert_steps: Optional[int] = None  # planned steps of each phase
    generator_steps: Optional[int] = None
    min_generator_steps: int = 0  # generator steps after which the model is ready

    def describe(self) -> str:
        m = ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items() if isinstance(v, float))
        of = lambda planned: "" if planned is None else f" of {planned}"  # noqa: E731
        text = (f"model {self.name}: expert step {self.expert_step}{of(self.expert_steps)}, generator step "
                f"{self.generator_step}{of(self.generator_steps)}; {m}\ndata: {self.dataset}\n")
        resume = f"`studio train --name {self.name} --resume`"
        if not self.ready:
            resume = resume_command(self.name, self.generator_steps, self.min_generator_steps)
            return text + (f"saved in {self.folder}, but the model is unfinished: its generator has done "
                           f"{self.generator_step}{of(self.generator_steps)} steps and a model is ready from step "
                           f"{self.min_generator_steps}, so lip-sync refuses it; resume it with {resume} "
                           "(add --minutes N)")
        if self.generator_steps is not None and self.generator_step < self.generator_steps:
            return text + (f"saved in {self.folder} (use it with --model {self.name}; it has done "
                           f"{self.generator_step} of {self.generator_steps} generator steps: {resume} trains it "
                           "further)")
        return text + f"saved in {self.folder} (use it with --model {self.name})"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    step: int
    metrics: dict
    ready: bool = True  # False: unfinished (lip-sync refuses it); checkpoints without the flag count as ready
    generator_steps: Optional[int] = None  # planned generator steps, when the checkpoint records them
    min_generator_steps: Optional[int] = None  # generator steps after which it is ready, when recorded

    def describe(self) -> str:
        m = ", ".join(f"{k} {v:.3f}" for k, v in self.metrics.items() if isinstance(v, float))
        of = "" if self.generator_steps is None else f" of {self.generator_steps}"
        if not self.ready:
            return (f"{self.name}: {self.path} (unfinished (generator step {self.step}{of}): resume it with "
                    f"{resume_command(self.name, self.generator_steps, self.min_generator_steps)}; {m})")
        return f"{self.name}: {self.path} (generator step {self.step}{of}; {m})"


def _check_name(name: str) -> str:
    if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise InputError(f"model name {name!r} is not valid; use letters, digits, '-', '_' or '.' (up to 64)")
    return name


def train(options: TrainOptions, progress=None) -> TrainResult:
    from ...device import resolve_device

    progress = Progress.of(progress)
    name = _check_name(options.name)
    folder = models_dir() / name
    run_file = folder / "run.json"
    if options.resume:
        if not (folder / "state.pt").exists():
            raise InputError(f"no training run named {name!r} to resume in {folder}; start one with --footage")
        saved = json.loads(run_file.read_text())
        # the consent given when the run started; runs started before consent was recorded need it now
        consent = saved.get("consent") or check_consent(options.consent, purpose=TRAIN_PURPOSE)
        footage = tuple(options.footage) or tuple(saved["footage"])
        config = TrainConfig(**saved["config"])
        footage_minutes = saved.get("footage_minutes")
        if options.steps is not None:  # a new length: the lr schedule stretches or shrinks to it
            config = replace(config, generator_steps=options.steps)
    else:
        if not options.footage:
            raise InputError("give the footage to train on with --footage FOLDER_OR_VIDEOS (or --resume a run)")
        if (folder / "state.pt").exists():
            raise InputError(f"a model named {name!r} already exists in {folder}; use --resume to continue it "
                             "or choose another name")
        consent = check_consent(options.consent, purpose=TRAIN_PURPOSE)
        footage = tuple(str(Path(f).expanduser().resolve()) for f in options.footage)
        from ...trust.consent import check_footage_not_marked
        from .dataset import list_footage

        if not (len(footage) == 1 and any(Path(footage[0]).glob("*/meta.json"))):  # not an already prepared set
            check_footage_not_marked(list_footage(footage), covered=options.consent_covers_marked)
        footage_minutes = options.footage_minutes
        device_kind = resolve_device(options.device)
        preset = options.preset or ("gpu" if device_kind.startswith("cuda") else "cpu")
        overrides = {k: v for k, v in dict(img_size=options.img_size, generator_steps=options.steps,
                                           expert_steps=options.expert_steps,
                                           gan_weight=options.gan_weight).items() if v is not None}
        if options.init:  # fine-tuning keeps the architecture of the starting checkpoint (official: 96 px, width 1)
            from ...checkpoints import build_model, load_checkpoint

            arch = build_model(load_checkpoint(options.init)).config
            if options.img_size is not None and options.img_size != arch["img_size"]:
                raise InputError(f"{options.init} is a {arch['img_size']} px model; drop --img-size or give "
                                 f"--img-size {arch['img_size']} to fine-tune it")
            # the starting generator already reconstructs faces, so the sync loss applies from the first step; the
            # lr ramps up over 200 steps so that a fresh optimiser does not throw the trained weights off
            # it is ready to use at any step (min_generator_steps=0)
            overrides.update(img_size=arch["img_size"], width=arch["width"], sync_warmup=0, lr_warmup=200,
                             min_generator_steps=0)
        if options.init_expert:
            if not options.init:
                raise InputError("--init-expert needs --init: a trained expert goes with the generator it trained")
            if options.expert_steps is None:
                overrides.update(expert_steps=0)
        if not 0 <= overrides.get("gan_weight", 0) < 0.5:
            raise InputError("--gan-weight must be between 0 (off) and 0.5; the published recipe uses 0.07")
        if options.cross_clip_refs is not None:
            if not 0 <= options.cross_clip_refs <= 1:
                raise InputError("--cross-clip-refs is a fraction between 0 and 1")
            overrides.update(cross_clip_refs=options.cross_clip_refs)
        if options.mouth_weight is not None:
            if not 0 <= options.mouth_weight <= 20:
                raise InputError("--mouth-weight must be between 0 (plain L1) and 20, e.g. 3")
            overrides.update(mouth_weight=options.mouth_weight)
        if options.lr is not None:
            if not 0 < options.lr < 0.1:
                raise InputError("--lr must be a small positive number, e.g. 1e-4 (fine-tuning) or 1e-3")
            base = TrainConfig.preset(preset)
            overrides.update(lr=options.lr, lr_final=None if base.lr_final is None
                             else options.lr * base.lr_final / base.lr)
        config = TrainConfig.preset(preset, **overrides)
    device = resolve_device(options.device)
    data = prepare_dataset(footage, img_size=config.img_size, max_minutes=footage_minutes, progress=progress)
    log.info("dataset: %s", data.describe())
    from .sampler import WindowSampler

    trainer = Trainer(folder, config, WindowSampler(data.train_clips, device, seed=config.seed),
                      WindowSampler(data.val_clips, device, seed=config.seed + 1), device,
                      meta=dict(name=name, data_fingerprint=data.fingerprint,
                                footage_seconds=round(float(data.seconds), 1),
                                attribution=options.attribution, val_clips=[str(c) for c in data.val_clips],
                                consent=consent,
                                **_init_meta(options)),
                      init_generator=None if options.resume else options.init,
                      init_expert=None if options.resume else options.init_expert)
    if options.resume:
        import torch

        # state.pt holds tensors and plain Python values only (Trainer.state_dict), so no pickled code can run
        trainer.load_state_dict(torch.load(folder / "state.pt", map_location=device, weights_only=True))
        trainer.meta.setdefault("name", name)  # runs started before the name was recorded
        trainer.meta["consent"] = consent  # the stored consent (or, for older runs, the one given now)
        if saved.get("consent") != consent:
            saved["consent"] = consent
            run_file.write_text(json.dumps(saved, indent=2))
        if config.generator_steps < trainer.gen_step:
            raise InputError(f"model {name!r} already has {trainer.gen_step} generator steps; give --steps above that "
                             "to train it longer")
        if asdict(config) != saved["config"]:
            saved["config"] = asdict(config)
            run_file.write_text(json.dumps(saved, indent=2))
    else:
        folder.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps(dict(footage=list(footage), config=asdict(config),
                                            footage_minutes=footage_minutes, consent=consent), indent=2))
    metrics = trainer.run(minutes=options.minutes, progress=progress)
    ready = trainer.readiness()
    return TrainResult(name, folder, trainer.expert_step, trainer.gen_step, metrics, data.describe(),
                       ready=ready["ready"], expert_steps=config.expert_steps,
                       generator_steps=config.generator_steps, min_generator_steps=ready["min_generator_steps"])


def _init_meta(options: TrainOptions) -> dict:
    """What a fine-tune started from (file names and their own step counts), kept in the checkpoints it writes."""
    if options.resume or not options.init:
        return {}
    from ...checkpoints import load_checkpoint

    out = {}
    for key, path in (("init", options.init), ("init_expert", options.init_expert)):
        if path:
            meta = load_checkpoint(path).meta
            out[key] = dict(checkpoint=str(path), step=meta.get("step"), expert_step=meta.get("expert_step"),
                            train_config=meta.get("train_config"))
    return out


def list_models() -> list[ModelInfo]:
    """Actor models: trained ones in the user's models folder and the ones shipped in checkpoints/."""
    from ...checkpoints import load_checkpoint

    found = []
    candidates = [(p.parent.name, p) for p in sorted(models_dir().glob("*/model.pt"))]
    candidates += [(p.stem, p) for p in sorted(BUNDLED_CHECKPOINTS.glob("*.pt"))]
    for name, path in candidates:
        try:
            loaded = load_checkpoint(path)
        except Exception as e:  # a damaged file should not hide the others
            log.warning("cannot read %s: %s", path, e)
            continue
        if loaded.kind != "wav2lip":  # a sync expert shipped beside its generator (base_expert.pt) is no actor model
            continue
        meta = loaded.meta
        planned = meta.get("generator_steps", (meta.get("train_config") or {}).get("generator_steps"))
        found.append(ModelInfo(name, path, int(meta.get("step", 0)), dict(meta.get("metrics", {})),
                               ready=meta.get("ready", True) is not False,
                               generator_steps=None if planned is None else int(planned),
                               min_generator_steps=meta.get("min_generator_steps")))
    return found


def options_from_cli(args) -> TrainOptions:
    return TrainOptions(name=args.name, footage=tuple(args.footage or ()), minutes=args.minutes, device=args.device,
                        preset=args.preset, img_size=args.img_size, steps=args.steps,
                        expert_steps=args.expert_steps, resume=args.resume, gan_weight=args.gan_weight,
                        init=args.init, init_expert=args.init_expert, lr=args.lr, cross_clip_refs=args.cross_clip_refs,
                        mouth_weight=args.mouth_weight, consent=getattr(args, "consent", None),
                        consent_covers_marked=getattr(args, "consent_covers_marked", False))


__all__ = ["TrainOptions", "TrainResult", "ModelInfo", "train", "list_models", "options_from_cli"]
