"""Voice cloning quality and speed: speaker similarity, speaker identification, intelligibility, real-time factor.

    python benchmarks/voice_clone.py DATA_DIR [--engines knn global] [--speakers N] [--out JSON]

DATA_DIR has the layout of ../shared/data/librispeech: `train-clean-100/SPK-*.flac` (one utterance per gallery
speaker) and `test-other/SPK/*.flac` (the speakers to clone, 10 utterances each). For each test speaker the first 3
utterances (sorted by name) are the reference and the other 7 are held out. Ten fixed sentences are spoken by the
base voice and by each engine in the cloned voice, and compared with the held-out real speech:

- similarity: cosine between the resemblyzer embedding of an output and the mean embedding of the held-out
  utterances; for real speech, each held-out utterance against the mean of the other six;
- the same for the held-out speech passed through the WORLD vocoder alone (the engine's ceiling);
- identification: rank of the true speaker among all speakers in DATA_DIR (each gallery speaker's utterance, each
  test speaker's held-out mean) -> top-1 / top-5 accuracy;
- WER of the bundled Whisper (tiny.en) on the output against the sentence;
- real-time factor on this machine: seconds of compute (base speech + conversion) per second of audio
  (conversion-only time is estimated as the whole call minus the base voice's time for the same sentence).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SENTENCES = [
    "Please leave the package at the front door before noon.",
    "The museum will open a new exhibition about ancient ships next month.",
    "I have never seen so many birds gathered on one small island.",
    "Turn left at the bakery and walk two blocks toward the river.",
    "Our team finished the project three days earlier than planned.",
    "She poured a cup of tea and watched the rain fall on the garden.",
    "The train to the mountains leaves every morning at seven fifteen.",
    "Could you explain once more how the new heating system works?",
    "He wrote a long letter to his brother who lives across the ocean.",
    "After dinner, the children played a quiet game by the fireplace.",
]


def read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), sr


def unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-9)


def rank_of(emb: np.ndarray, gallery: np.ndarray, true_index: int) -> int:
    scores = gallery @ unit(emb)
    return int((scores > scores[true_index]).sum()) + 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--engines", nargs="+", default=["knn", "global"])
    ap.add_argument("--speakers", type=int, help="only the first N test speakers")
    ap.add_argument("--sentences", type=int, default=len(SENTENCES))
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "voice_clone.json")
    args = ap.parse_args(argv)

    from studio.audio.asr import transcribe, word_error_rate
    from dataclasses import replace

    from studio.audio.io import resample
    from studio.voice import world
    from studio.voice.service import speak
    from studio.voice.profiles import create_voice, speaker_embedding
    from studio.voice.tts import synthesize

    gallery_files = sorted((args.data_dir / "train-clean-100").glob("*.flac"))
    speakers = sorted(d for d in (args.data_dir / "test-other").iterdir() if d.is_dir())
    if not gallery_files or not speakers:
        ap.error(f"{args.data_dir} needs train-clean-100/*.flac and test-other/SPK/*.flac")
    speakers = speakers[: args.speakers] if args.speakers else speakers
    sentences = SENTENCES[: args.sentences]

    print(f"embedding {len(gallery_files)} gallery speakers ...", file=sys.stderr)
    gallery = [unit(speaker_embedding(*read(f))) for f in gallery_files]
    held, refs = {}, {}
    for d in speakers:
        files = sorted(d.glob("*.flac"))
        refs[d.name], held[d.name] = files[:3], files[3:]
    held_emb = {s: [unit(speaker_embedding(*read(f))) for f in fs] for s, fs in held.items()}
    enrol = {s: unit(np.mean(e, axis=0)) for s, e in held_emb.items()}
    names = [f.name.split("-")[0] for f in gallery_files] + list(enrol)
    bank = np.stack(gallery + list(enrol.values()))

    systems = ["base", *args.engines]
    rows = {k: {"sim": [], "rank": [], "wer_err": 0.0, "wer_words": 0, "compute": 0.0, "seconds": 0.0,
                "convert": 0.0} for k in systems}
    real = {"sim": [], "rank": []}
    vocoded = {"sim": [], "rank": []}
    per_speaker = {}
    for s in speakers:
        sid = s.name
        true_index = names.index(sid)
        # real held-out speech: leave-one-out enrolment for the true speaker
        for k, e in enumerate(held_emb[sid]):
            others = unit(np.mean([x for j, x in enumerate(held_emb[sid]) if j != k], axis=0))
            real["sim"].append(float(e @ others))
            b = bank.copy()
            b[true_index] = others
            real["rank"].append(rank_of(e, b, true_index))
            # the vocoder's own ceiling: the same held-out utterance through WORLD analysis and synthesis
            audio, sr = read(held[sid][k])
            x = resample(audio, sr, world.WORK_RATE)
            fr = world.analyse(x)
            y = world.synthesize(fr.f0, fr.envelope, fr.aperiodicity)
            vocoded["sim"].append(float(unit(speaker_embedding(y, world.WORK_RATE)) @ others))
            vocoded["rank"].append(rank_of(speaker_embedding(y, world.WORK_RATE), b, true_index))
        ref = np.concatenate([read(f)[0] for f in refs[sid]])
        t0 = time.perf_counter()
        profile = create_voice((ref, read(refs[sid][0])[1]), name=None, consent="benchmark: LibriSpeech, CC BY 4.0")
        create_s = time.perf_counter() - t0
        spk_rows = {k: [] for k in systems}
        for text in sentences:
            t0 = time.perf_counter()
            speech = synthesize(text)
            base_s = time.perf_counter() - t0
            outputs = {"base": (speech.audio, base_s, 0.0)}
            for e in args.engines:
                # the whole `speak` call in the cloned voice (base speech at the speaker's pace + conversion)
                t0 = time.perf_counter()
                y = speak(text, voice=replace(profile, engine=e)).audio
                total = time.perf_counter() - t0
                outputs[e] = (y, total, max(0.0, total - base_s))
            for k, (y, compute, conv_s) in outputs.items():
                emb = unit(speaker_embedding(y, speech.sample_rate))
                hyp = " ".join(seg.text for seg in transcribe(y, speech.sample_rate))
                wer = word_error_rate(text, hyp)
                n_words = len(text.split())
                r = rows[k]
                r["sim"].append(float(emb @ enrol[sid]))
                r["rank"].append(rank_of(emb, bank, true_index))
                r["wer_err"] += wer * n_words
                r["wer_words"] += n_words
                r["compute"] += compute
                r["convert"] += conv_s
                r["seconds"] += len(y) / speech.sample_rate
                spk_rows[k].append(float(emb @ enrol[sid]))
        per_speaker[sid] = {"reference_speech_s": profile.speech_seconds, "create_s": round(create_s, 2),
                            "real_sim": round(float(np.mean(real["sim"][-len(held_emb[sid]):])), 3),
                            **{f"{k}_sim": round(float(np.mean(v)), 3) for k, v in spk_rows.items()}}
        print(f"speaker {sid}: {per_speaker[sid]}", file=sys.stderr)

    def summary(r: dict) -> dict:
        ranks = np.array(r["rank"])
        out = {"similarity": round(float(np.mean(r["sim"])), 3), "top1": round(float(np.mean(ranks == 1)), 3),
               "top5": round(float(np.mean(ranks <= 5)), 3), "trials": int(len(ranks))}
        if "wer_words" in r:
            out.update(wer=round(r["wer_err"] / max(1, r["wer_words"]), 3),
                       rtf=round(r["compute"] / max(1e-9, r["seconds"]), 3),
                       rtf_conversion_only=round(r["convert"] / max(1e-9, r["seconds"]), 3))
        return out

    result = {
        "data_dir": str(args.data_dir), "gallery_speakers": len(gallery_files), "test_speakers": len(speakers),
        "sentences": len(sentences), "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": __import__("os").cpu_count(),
        "real_heldout": summary(real), "real_heldout_world_vocoded": summary(vocoded), "systems": {k: summary(rows[k]) for k in systems},
        "per_speaker": per_speaker,
    }
    print(f"{'system':12s} {'similarity':>10s} {'top-1':>6s} {'top-5':>6s} {'WER':>6s} {'RTF':>6s}")
    rr = result["real_heldout"]
    print(f"{'real speech':12s} {rr['similarity']:10.3f} {rr['top1']:6.2f} {rr['top5']:6.2f} {'-':>6s} {'-':>6s}")
    rv = result["real_heldout_world_vocoded"]
    print(f"{'real, WORLD':12s} {rv['similarity']:10.3f} {rv['top1']:6.2f} {rv['top5']:6.2f} {'-':>6s} {'-':>6s}")
    for k, v in result["systems"].items():
        print(f"{k:12s} {v['similarity']:10.3f} {v['top1']:6.2f} {v['top5']:6.2f} {v['wer']:6.3f} {v['rtf']:6.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
