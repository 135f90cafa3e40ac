"""Personalise a lip-sync network on the face video's own footage, then render with it.

    studio lipsync --face video.mp4 --audio new.wav --personalize --budget-minutes 5 --consent "..."

The video's first ``1 - HOLDOUT`` is cut into short pieces; pieces with a face throughout and speech on the
track are prepared with the training dataset (content-hashed, so a rerun reuses them); a copy of the base model
(default: the bundled ``base``, trained on every person available, with its sync expert, which transfers across
people where an expert trained on one person's 40 s does not) is fine-tuned on them within the budget. The last
``HOLDOUT`` of the footage is never trained on: it is re-synced to its own sound with the personalised model and
with the base model, and the mouths are compared with the real frames (mouth-opening correlation, best lag,
mouth-region PSNR); these held-out numbers come back in the :class:`~studio.types.PersonalizationReport`.

Cached by content: the model folder's name is a hash of the video's bytes, the base model's and expert's sha256 and
the settings, so a second render of the same footage skips training. Falls back to the weights-free engine, saying
why, when the footage has too little face + speech (< ``MIN_SECONDS``), is a photo, or the budget leaves too little
time to train. Consent is required (as for ``studio train``) and stored in the model's metadata, from where the
render's provenance records it.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from ..hashing import file_sha256
from ..log import get_logger
from ..paths import models_dir
from ..progress import Progress
from ..types import PersonalizationReport

log = get_logger("personalize")

VERSION = 2  # 2: held-out 30 %, scored with references from the training part (a fair re-sync)
HOLDOUT = 0.3  # the last 30 % of the footage is held out for the report (never trained on)
REFERENCE_SECONDS = 3.0  # of the training part whose frames serve as references when scoring the held-out part
MIN_SECONDS = 8.0  # of face + speech in the training part; below it the fine-tune learns too little
BASE_MODEL, BASE_EXPERT = "base", "base_expert"
FALLBACK_BASE = "s1"  # the start while the bundled base model is unfinished
MIN_EXPERT_ACC = 0.6  # a sync expert below this validation accuracy is not used for the sync loss
VOICED_FRACTION = 0.3  # a piece counts as speech when this share of its 20 ms frames is voiced


@dataclass(frozen=True)
class PersonalizeSettings:
    """How to personalise (all of it goes into the cache key)."""

    budget_minutes: float = 5.0  # preparation + fine-tune (the held-out scoring comes on top)
    base: Optional[str] = None  # generator to start from; None = bundled "base" (or the official wav2lip: --init)
    base_expert: Optional[str] = None  # sync expert matching it; None = bundled "base_expert" with "base"
    preset: str = "cpu"  # training preset (tests: "debug")
    holdout: float = HOLDOUT
    piece_seconds: float = 3.0
    max_seconds: float = 120.0  # footage used at most (training part)
    min_seconds: float = MIN_SECONDS
    min_train_minutes: float = 0.5  # less time left for training after preparation: fall back
    lr: float = 2e-4
    compare_base: bool = True  # also score the base model on the held-out part
    max_steps: Optional[int] = None  # stop after this many generator steps even if time is left (tests)


def personalize(video, consent: Optional[str], settings: PersonalizeSettings = PersonalizeSettings(),
                device: str = "cpu", progress=None) -> PersonalizationReport:
    """A personalised model for the person in ``video`` (cached), or a fallback report saying why not."""
    from ..trust.consent import TRAIN_PURPOSE, check_consent
    from ..video.io import probe

    progress = Progress.of(progress)
    consent = check_consent(consent, purpose=TRAIN_PURPOSE)
    video = Path(video)
    info = probe(video, "face video")
    base, expert = _base_models(settings)
    key = cache_key(video, base, expert, settings)
    folder = models_dir() / f"personal-{key}"
    report_file = folder / "report.json"
    if report_file.exists() and (folder / "model.pt").exists():
        report = _load_report(report_file)
        log.info("personalised model for %s from the cache: %s", video, folder)
        return replace(report, cached=True)
    if info.is_image or not info.has_video:
        return _fallback(key, "the face is a photo: there is no footage of the person speaking to learn from")
    if not info.has_audio:
        return _fallback(key, "the face video has no sound: personalisation learns from the person's own speech")
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="studio-personalize-"))
    try:
        train_pieces, heldout_piece, heldout_seconds, silent = cut_footage(video, info.duration, settings, work,
                                                                           progress)
        img_size = _arch(base)["img_size"]
        data, usable, skipped = prepare_pieces(train_pieces, progress, img_size)
        skipped["no speech"] += silent
        if usable < settings.min_seconds:
            return _fallback(key, f"too little usable footage: {usable:.1f} s of face + speech in the first "
                             f"{100 * (1 - settings.holdout):.0f} % of the video (at least {settings.min_seconds:g} s "
                             "needed; give a longer clip of the person talking, face visible)", usable, skipped)
        prepare_seconds = time.monotonic() - start
        train_minutes = settings.budget_minutes - prepare_seconds / 60
        if train_minutes < settings.min_train_minutes:
            return _fallback(key, f"too little time: preparing the footage took {prepare_seconds / 60:.1f} of the "
                             f"{settings.budget_minutes:g} budget minutes, leaving under "
                             f"{settings.min_train_minutes:g} min to train (give a larger --budget-minutes)",
                             usable, skipped)
        val = (prepare_pieces([heldout_piece], progress, img_size)[0] or [None])[0] if heldout_piece else None
        steps, seconds, cpu_seconds = _fine_tune(folder, data, val, base, expert, settings, train_minutes, device, consent,
                                    dict(video_sha256=file_sha256(video), video=video.name, key=key), progress)
        heldout, heldout_base = {}, {}
        if heldout_piece is not None:
            scored = heldout_scores([folder / "model.pt"] + ([base] if settings.compare_base else []),
                                    heldout_piece, device, progress, references=train_pieces[::-1])
            heldout, heldout_base = scored[0], (scored[1] if len(scored) > 1 else {})
        report = PersonalizationReport(
            model=folder / "model.pt", key=key, base=str(base), usable_seconds=round(usable, 2),
            heldout_seconds=round(heldout_seconds, 2), steps=steps, train_seconds=round(seconds, 1),
            train_cpu_seconds=round(cpu_seconds, 1),
            prepare_seconds=round(prepare_seconds, 1), heldout=heldout, heldout_base=heldout_base,
            skipped={k: len(v) for k, v in skipped.items() if v})
        _save_report(report_file, report)
        (folder / "state.pt").unlink(missing_ok=True)  # optimiser state: not needed to render, 3x the model's size
        log.info("%s", report.describe())
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


DEFAULT_SETTINGS = PersonalizeSettings()


def personalized_options(face, options, device: str, progress=None):
    """(options for the render, report): the personalised model with the wav2lip engine, or the weights-free
    engine when personalisation fell back. ``options`` is a LipSyncOptions with ``personalize`` set."""
    settings = replace(DEFAULT_SETTINGS, budget_minutes=float(options.budget_minutes),
                       base=options.personalize_from or DEFAULT_SETTINGS.base)
    if not settings.budget_minutes > 0:
        raise InputError("--budget-minutes must be a positive number of minutes, e.g. 5")
    report = personalize(face, options.consent, settings, device, progress)
    if report.model is None:
        return replace(options, engine="visemes", model=None), report
    return replace(options, engine="wav2lip", model=str(report.model)), report


def _base_models(settings: PersonalizeSettings) -> tuple[str, Optional[str]]:
    """The generator to start from and a sync expert of the same shape (None: none available, L1 only)."""
    from .. import checkpoints

    base = settings.base or default_base()
    if settings.base_expert:
        return base, settings.base_expert
    if base == BASE_MODEL:
        return base, BASE_EXPERT if checkpoints.is_available(BASE_EXPERT) else None
    if Path(str(base)).name in ("wav2lip.pth", "wav2lip_gan.pth") or base in ("wav2lip", "wav2lip_gan"):
        return base, "lipsync_expert" if checkpoints.is_available("lipsync_expert") else None
    return base, None


def default_base() -> str:
    """The bundled multi-person ``base`` model once its training has made it ready (its metadata says so); until
    then ``s1`` (one person, but a finished generator: measured on an unseen person, 5 budget minutes from s1 beat
    5 from the unfinished base, see the README)."""
    from .. import checkpoints

    if checkpoints.is_available(BASE_MODEL) and checkpoints.load_checkpoint(BASE_MODEL).meta.get("ready", True):
        return BASE_MODEL
    log.info("the bundled base model is unfinished (see checkpoints/README.md): personalising from s1")
    return FALLBACK_BASE


def cache_key(video: Path, base: str, expert: Optional[str], settings: PersonalizeSettings) -> str:
    """Hash of the video's bytes, the starting models' sha256 and the settings."""
    from ..checkpoints import resolve, sha256_of

    h = hashlib.sha256(f"personalize-v{VERSION}".encode())
    h.update(file_sha256(video).encode())
    for model in (base, expert):
        h.update(b"-" if model is None else sha256_of(resolve(model)).encode())
    h.update(json.dumps(asdict(settings), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def voiced(audio: np.ndarray, sr: int) -> np.ndarray:
    """Per 20 ms frame: True where the sound is well above the track's noise floor (a simple energy test)."""
    hop = sr // 50
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0, bool)
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    floor, peak = np.percentile(rms, 10), np.percentile(rms, 95)
    return rms > max(floor * 3, peak * 0.1, 1e-4)


def cut_footage(video: Path, duration: float, settings: PersonalizeSettings, work: Path, progress: Progress):
    """Pieces of the training part that have speech (files), the held-out part (one file, None when too short) and
    its length. Pieces without speech are left out here; pieces without a face are left out by the dataset."""
    from ..audio.io import load_audio

    audio, sr = load_audio(video, 16000, what="face video's sound", allow_silent=True)
    active = voiced(audio, sr)
    split = duration * (1 - settings.holdout)
    train_end = min(split, settings.max_seconds)
    pieces, silent, t = [], [], 0.0
    starts = []
    while t + 1.0 <= train_end:  # the last piece may be shorter (at least 1 s)
        starts.append((t, min(settings.piece_seconds, train_end - t)))
        t += settings.piece_seconds
    for i, (t, length) in enumerate(starts):
        progress.update("cutting footage", i, len(starts))
        frames = active[int(t * 50): int((t + length) * 50)]
        if len(frames) == 0 or frames.mean() < VOICED_FRACTION:
            silent.append(f"{t:.1f}-{t + length:.1f} s")
            continue
        pieces.append(cut(video, t, length, work / f"piece{i:03d}.mp4"))
    heldout_seconds = duration - split
    heldout = cut(video, split, heldout_seconds, work / "heldout.mp4") if heldout_seconds >= 0.6 else None
    return pieces, heldout, heldout_seconds, silent


def cut(video: Path, start: float, seconds: float, out: Path) -> Path:
    """Frame-accurate re-encoded piece of a video (picture at its own size and rate, sound as AAC)."""
    from ..video.io import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-ss", f"{start:.3f}", "-i", str(video), "-t", f"{seconds:.3f}",
           "-c:v", "libx264", "-crf", "14", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-b:a", "160k", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise InputError(f"cannot cut {video} at {start:.1f} s: {done.stderr.strip()[-300:]}")
    return out


def prepare_pieces(pieces, progress: Progress, img_size: int = 96):
    """Prepared clip folders (the training dataset's content-hashed cache), their seconds, and skipped pieces by
    reason (no face throughout, no speech, unreadable)."""
    from ..paths import cache_dir
    from .training.dataset import _content_hash, prepare_clip

    root = cache_dir() / "datasets"
    root.mkdir(parents=True, exist_ok=True)
    clips, seconds, skipped = [], 0.0, {"no face": [], "no speech": [], "broken": []}
    for i, piece in enumerate(pieces):
        progress.update("preparing footage", i, len(pieces))
        out = root / _content_hash(piece, img_size)
        if not (out / "meta.json").exists():
            reason = prepare_clip(piece, out, img_size)
            if reason:
                skipped[reason].append(str(piece))
                continue
        clips.append(out)
        seconds += json.loads((out / "meta.json").read_text())["seconds"]
    progress.update("preparing footage", len(pieces), len(pieces))
    return clips, seconds, skipped


def _fallback(key: str, reason: str, usable: float = 0.0, skipped: Optional[dict] = None) -> PersonalizationReport:
    log.warning("personalisation not possible, using the weights-free engine: %s", reason)
    return PersonalizationReport(model=None, key=key, fallback_reason=reason, usable_seconds=round(usable, 2),
                                 skipped={k: len(v) for k, v in (skipped or {}).items() if v})


def _fine_tune(folder: Path, clips, val_clip, base: str, expert: Optional[str], settings: PersonalizeSettings,
               minutes: float, device: str, consent: str, source: dict, progress: Progress) -> tuple[int, float]:
    """Fine-tune a copy of ``base`` on the prepared clips for ``minutes``; writes model.pt (+ expert.pt)."""
    from ..checkpoints import load_checkpoint
    from .training.sampler import WindowSampler
    from .training.train import Trainer, TrainConfig

    arch = _arch(base)
    if expert is not None:  # an expert at chance on held-out people gives the generator noise, not sync
        acc = (load_checkpoint(expert).meta.get("metrics") or {}).get("val_expert_acc")
        if acc is not None and acc < MIN_EXPERT_ACC:
            log.warning("the sync expert %s scored %.2f on held-out people (chance 0.5): fine-tuning on L1 alone",
                        expert, acc)
            expert = None
    # the base expert stays frozen (0 expert steps): it was trained on many people, which is what makes its sync
    # signal useful here; without one the fine-tune is L1 only. The sync loss acts from the first step (the base
    # generator already rebuilds faces); lr ramps up so a fresh optimiser does not throw the weights off.
    config = TrainConfig.preset(
        settings.preset, img_size=arch["img_size"], width=arch["width"], expert_steps=0, generator_steps=settings.max_steps or 100_000,
        sync_warmup=0, sync_weight=0.03 if expert else 0.0, lr=settings.lr, lr_final=None, lr_warmup=30,
        min_generator_steps=0, eval_every=10 ** 9, mouth_weight=3.0, cross_clip_refs=0.5, val_batches=2)
    train = WindowSampler(clips, device, seed=config.seed)
    val = WindowSampler([val_clip] if val_clip is not None else clips, device, seed=config.seed + 1)
    meta = dict(name=f"personal-{source['key']}", consent=consent, personalized=dict(
        source, base=str(base), base_expert=None if expert is None else str(expert),
        settings=asdict(settings), clips=len(clips)))
    base_meta = load_checkpoint(base).meta
    if base_meta.get("attribution"):
        meta["base_attribution"] = base_meta["attribution"]
    trainer = Trainer(folder, config, train, val, device, meta=meta, init_generator=base, init_expert=expert)
    start, cpu = time.monotonic(), time.process_time()

    def by_time(stage, done, total):  # the run is bounded by time, not by its nominal step count
        if progress.callback is not None:
            progress.callback(f"personalising · {done} steps · {stage}", int(time.monotonic() - start),
                              int(minutes * 60))

    trainer.run(minutes=minutes, progress=Progress(callback=by_time, cancel_event=progress.cancel_event))
    log.info("fine-tune: %d generator steps in %.0f s (%.0f s of CPU time in this process)", trainer.gen_step,
             time.monotonic() - start, time.process_time() - cpu)
    return trainer.gen_step, time.monotonic() - start, time.process_time() - cpu


def _arch(model) -> dict:
    from ..checkpoints import build_model, load_checkpoint

    return build_model(load_checkpoint(model)).config


def reference_crops(video: Path, img_size: int, max_seconds: float = REFERENCE_SECONDS) -> Optional[np.ndarray]:
    """(N, S, S, 3) face crops of the first ``max_seconds`` of ``video`` (frames with a face), or None."""
    from ..face import track_with_frames
    from ..video.io import probe, read_frames
    from .neural import face_crop

    info = probe(video)
    limit = max(1, int(max_seconds * (info.fps or 25)))
    frames = (f for k, f in enumerate(read_frames(info)) if k < limit)
    crops = [face_crop(frame, face.box, img_size) for frame, face in track_with_frames(frames, info.fps)
             if face is not None]
    return np.stack(crops) if crops else None


def resync_frames(model, frames, faces, speech, fps: float, device: str, references=None, batch: int = 16):
    """``frames`` re-synced to ``speech`` with the generator ``model``, blended, in memory. ``references``: a
    video, a list of videos (the first with a face is used) or (N, S, S, 3) crops, whose face crops serve as the generator's reference frames, in order and
    cycled; None: each frame is its own reference (as in a render). Scoring a re-sync of footage to its own sound
    must take them from elsewhere: a frame's own reference shows the very mouth the sound asks for, and a model
    that copies it scores high without following the sound."""
    from .blend import blend
    from .neural import Wav2LipEngine, face_crop, model_inputs

    engine = Wav2LipEngine(str(model), device=device, batch_size=batch, allow_unfinished=True)  # a measurement
    engine.prepare(speech, fps, len(frames))
    refs = references
    if refs is not None and not isinstance(refs, np.ndarray):  # videos: the first one with a face
        videos = [refs] if isinstance(refs, (str, Path)) else list(refs)
        refs = next((c for c in (reference_crops(Path(v), engine.img_size) for v in videos) if c is not None), None)
        if refs is None:
            raise InputError("no face found in the reference footage for scoring; give footage with the face visible")
    rendered = list(frames)
    todo = [i for i, f in enumerate(faces) if f is not None]
    for start in range(0, len(todo), batch):
        ids = todo[start:start + batch]
        crops = np.stack([face_crop(frames[i], faces[i].box, engine.img_size) for i in ids])
        ref = None if refs is None else refs[np.array(ids) % len(refs)]
        if engine.bgr:
            crops, ref = crops[..., ::-1], (None if ref is None else ref[..., ::-1])
        generated = engine._infer(model_inputs(crops, ref), engine.windows[np.minimum(ids, len(engine.windows) - 1)][:, None])
        if engine.bgr:
            generated = generated[..., ::-1]
        import cv2

        from ..types import Patch

        for i, gen in zip(ids, generated):
            x1, y1, x2, y2 = faces[i].box
            image = cv2.resize(np.ascontiguousarray(gen), (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
            rendered[i] = blend(frames[i], Patch(box=faces[i].box, image=image), faces[i])
    return rendered


def heldout_scores(models, video: Path, device: str, progress=None, audio_path=None, references=None) -> list[dict]:
    """Re-sync ``video`` to its own sound (or ``audio_path``'s) with each model (in memory: the same tracking,
    generator and blend as a render, without encoding) and compare its mouths with the real frames:
    mouth_open_corr (Pearson, lag 0), best_lag (frames within +-5, + = the render is late) and mouth_psnr (dB,
    the lower half of 96 px face crops). ``references``: footage outside the scored part (the training part)
    whose frames are the generator's references, so the real mouth is not in its input (see resync_frames);
    None uses each frame as its own reference (the unfair score of earlier versions, kept for comparison)."""
    from ..audio.io import load_audio
    from ..face import track_frames, track_with_frames
    from ..face.landmarks import mouth_opening
    from ..lipsync.metrics import best_lag, pearson, psnr
    from ..types import Speech
    from ..video.io import probe, read_frames
    from .neural import face_crop

    progress = Progress.of(progress)
    info = probe(video)
    frames, faces = [], []
    for frame, face in track_with_frames(read_frames(info), info.fps):
        frames.append(frame)
        faces.append(face)
    audio, sr = load_audio(audio_path or video, 16000, allow_silent=True)
    real = _filled([np.nan if f is None else mouth_opening(f.landmarks) for f in faces])
    results = []
    for k, model in enumerate(models):
        progress.update("scoring on the held-out footage", k, len(models))
        rendered = resync_frames(model, frames, faces, Speech(audio, sr), info.fps, device, references)
        scores: dict = dict(frames=len(frames), references="training part" if references is not None else "own frame")
        psnrs = [psnr(face_crop(f, fc.box, 96)[48:], face_crop(g, fc.box, 96)[48:])
                 for f, g, fc in zip(frames, rendered, faces) if fc is not None]
        if psnrs:
            scores["mouth_psnr"] = round(float(np.mean(psnrs)), 2)
        gen = _filled([np.nan if f is None else mouth_opening(f.landmarks) for f in track_frames(rendered, info.fps)])
        if real is None or gen is None:
            scores["note"] = "no face tracked in the " + ("held-out frames" if real is None else "re-synced frames")
        else:
            scores = dict(mouth_open_corr=round(pearson(gen, real), 4), best_lag=int(best_lag(gen, real)), **scores)
        results.append(scores)
    progress.update("scoring on the held-out footage", len(models), len(models))
    return results


def _filled(values) -> Optional[np.ndarray]:
    a = np.asarray(values, float)
    if np.isnan(a).all():
        return None
    return np.where(np.isnan(a), np.nanmean(a), a)


def _save_report(path: Path, report: PersonalizationReport) -> None:
    data = asdict(report)
    data["model"] = str(report.model) if report.model else None
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def _load_report(path: Path) -> PersonalizationReport:
    data = json.loads(path.read_text())
    data["model"] = path.parent / "model.pt"  # the folder may have moved with the user's models
    return PersonalizationReport(**data)


__all__ = ["PersonalizeSettings", "personalize", "personalized_options", "cache_key", "heldout_scores", "cut_footage",
           "resync_frames", "reference_crops"]
