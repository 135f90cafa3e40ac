"""Voice cloning quality and speed: speaker similarity by two encoders, identification, intelligibility, creation
time, real-time factor; English and cross-lingual (Spanish) rows.

    python benchmarks/voice_clone.py DATA_DIR [--engines knn kokoro kokoro-fit hybrid kokoro-grad hybrid-grad]
        [--speakers N | --speaker-ids ID ...] [--sentences N] [--es-sentences N] [--fit-seconds S] [--quick]
        [--out JSON]
    python benchmarks/voice_clone.py --merge A.json B.json --out JSON    # join runs of disjoint speakers

DATA_DIR has the layout of ../shared/data/librispeech: `train-clean-100/SPK-*.flac` (one utterance per gallery
speaker) and `test-other/SPK/*.flac` (the speakers to clone, 10 utterances each). For each test speaker the first 3
utterances (sorted by name) are the reference and the other 7 are held out. Every voice is made from the reference
only (the Kokoro style fit scores its candidates against the reference, never against held-out speech); fixed
sentences are spoken by each system and compared with the held-out real speech.

Systems: "base" (the piper voice), "knn" (piper converted by kNN), "kokoro" (the shipped Kokoro voice closest to the
reference, chosen by resemblyzer on the reference: Kokoro unfitted), "kokoro-fit" / "kokoro-grad" (Kokoro with the
style fitted to the reference by the gradient-free search / by gradient through the PyTorch Kokoro,
studio.voice.kokoro_fit.STYLE_FITS), "hybrid" / "hybrid-grad" (that fitted Kokoro voice, then kNN conversion learnt
between it and the reference).

Each output is scored by two independent speaker encoders (studio.voice.similarity: resemblyzer, which the Kokoro
fit optimises, and the voicefilter d-vector, which nothing is fitted to):
- similarity: cosine between the output's embedding and the mean embedding of the held-out utterances; for real
  speech, each held-out utterance against the mean of the other six;
- identification: rank of the true speaker among all speakers in DATA_DIR (each gallery speaker's utterance, each
  test speaker's held-out mean) -> top-1 / top-5 accuracy;
- WER of the bundled Whisper (tiny.en) on the English output against the sentence;
- creation: CPU seconds of this process to make the voice (reference cleaning, transcription, alignment, fit);
- real-time factor on this machine: seconds of compute per second of audio (the whole `speak` call, audio mark
  included; "base" is the bare piper synthesis).
Cross-lingual rows: the Kokoro-based voices speaking Spanish sentences (and Kokoro's default Spanish voice as a
baseline): similarity to the English held-out speech, identification, and Spanish WER by the multilingual Whisper
base (benchmarks/tts_engines.py joins it from its packages).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace
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
SENTENCES_ES = [
    "Por favor, deja el paquete en la puerta principal antes del mediodía.",
    "El museo abrirá una nueva exposición sobre barcos antiguos el próximo mes.",
    "Nunca he visto tantos pájaros reunidos en una isla tan pequeña.",
    "Gira a la izquierda en la panadería y camina dos calles hacia el río.",
]
ENCODERS = ("resemblyzer", "voicefilter")
ALL_ENGINES = ("knn", "kokoro", "kokoro-fit", "hybrid", "kokoro-grad", "hybrid-grad")
# style fit method -> (its Kokoro row, its hybrid row)
FIT_ROWS = {"search": ("kokoro-fit", "hybrid"), "gradient": ("kokoro-grad", "hybrid-grad")}


def read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), sr


def unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) + 1e-9)


def rank_of(emb: np.ndarray, gallery: np.ndarray, true_index: int) -> int:
    scores = gallery @ unit(emb)
    return int((scores > scores[true_index]).sum()) + 1


def embed_files(files, enc, cache: dict, save=None) -> list[np.ndarray]:
    out = []
    for i, f in enumerate(files):
        key = f"{enc.name}:{f}"
        if key not in cache:
            cache[key] = enc.embed(*read(f))
            if save is not None and i % 25 == 24:
                save()
        out.append(cache[key])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_dir", type=Path, nargs="?")
    ap.add_argument("--engines", nargs="+", default=list(ALL_ENGINES), choices=ALL_ENGINES)
    ap.add_argument("--speakers", type=int, help="only the first N test speakers")
    ap.add_argument("--speaker-ids", nargs="+", help="only these test speakers (e.g. one per process on a shared "
                    "machine; join the JSONs with --merge)")
    ap.add_argument("--merge", nargs="+", type=Path, help="join result JSONs of disjoint speakers (same sentences "
                    "and engines) into --out, and print the table")
    ap.add_argument("--sentences", type=int, default=len(SENTENCES))
    ap.add_argument("--es-sentences", type=int, default=len(SENTENCES_ES), help="Spanish sentences (0 = none)")
    ap.add_argument("--fit-seconds", type=float, default=300.0, help="CPU seconds of the Kokoro style search")
    ap.add_argument("--quick", action="store_true",
                    help="3 speakers, 4 English and 2 Spanish sentences, a 60 CPU-second fit (shared machines)")
    ap.add_argument("--embedding-cache", type=Path, help="a JSON file keeping the gallery's embeddings between runs")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "voice_clone.json")
    args = ap.parse_args(argv)
    if args.merge:
        result = merge([json.loads(f.read_text()) for f in args.merge])
        print(table(result))
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
        return 0
    if args.data_dir is None:
        ap.error("DATA_DIR is required (unless --merge)")
    if args.quick:
        args.speakers, args.sentences, args.es_sentences = args.speakers or 3, min(args.sentences, 4), \
            min(args.es_sentences, 2)
        args.fit_seconds = min(args.fit_seconds, 60.0)

    from faster_whisper import WhisperModel

    from benchmarks.tts_engines import wer as wer_multilingual
    from benchmarks.tts_engines import whisper_base_dir
    from studio.audio.asr import transcribe, word_error_rate
    from studio.audio.io import resample
    from studio.voice.kokoro import _styles
    from studio.voice.profiles import create_voice
    from studio.voice.service import SpeakOptions, speak
    from studio.voice.similarity import encoder
    from studio.voice.tts import synthesize

    encoders = {n: encoder(n) for n in ENCODERS}
    gallery_files = sorted((args.data_dir / "train-clean-100").glob("*.flac"))
    speakers = sorted(d for d in (args.data_dir / "test-other").iterdir() if d.is_dir())
    if not gallery_files or not speakers:
        ap.error(f"{args.data_dir} needs train-clean-100/*.flac and test-other/SPK/*.flac")
    speakers = speakers[: args.speakers] if args.speakers else speakers
    if args.speaker_ids:
        speakers = [s for s in speakers if s.name in args.speaker_ids]
    sentences = SENTENCES[: args.sentences]
    sentences_es = SENTENCES_ES[: args.es_sentences]

    cache: dict = {}
    if args.embedding_cache and args.embedding_cache.exists():
        cache = json.loads(args.embedding_cache.read_text())
        cache = {k: np.asarray(v, np.float32) for k, v in cache.items()}

    def save_cache():
        if args.embedding_cache:
            tmp = args.embedding_cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in cache.items()}))
            os.replace(tmp, args.embedding_cache)

    print(f"embedding {len(gallery_files)} gallery speakers with {', '.join(ENCODERS)} ...", file=sys.stderr)
    gallery = {n: [unit(e) for e in embed_files(gallery_files, enc, cache, save_cache)]
               for n, enc in encoders.items()}
    held, refs = {}, {}
    all_speakers = sorted(d for d in (args.data_dir / "test-other").iterdir() if d.is_dir())
    for d in all_speakers:
        files = sorted(d.glob("*.flac"))
        refs[d.name], held[d.name] = files[:3], files[3:]
    held_emb = {n: {s: [unit(e) for e in embed_files(fs, enc, cache)] for s, fs in held.items()}
                for n, enc in encoders.items()}
    save_cache()
    enrol = {n: {s: unit(np.mean(e, axis=0)) for s, e in held_emb[n].items()} for n in ENCODERS}
    names = [f.name.split("-")[0] for f in gallery_files] + list(held)
    bank = {n: np.stack(gallery[n] + list(enrol[n].values())) for n in ENCODERS}

    asr_es = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8",
                          cpu_threads=int(os.environ.get("OMP_NUM_THREADS", "2"))) if sentences_es else None

    def new_row() -> dict:
        return {"sim": {n: [] for n in ENCODERS}, "rank": {n: [] for n in ENCODERS}, "wer_err": 0.0,
                "wer_words": 0, "compute": 0.0, "seconds": 0.0, "create_cpu_s": []}

    systems = ["base", *args.engines]
    es_systems = ["kokoro-base"] + [e for e in args.engines if e != "knn"]
    rows = {k: new_row() for k in systems}
    rows_es = {k: new_row() for k in es_systems}
    real = {"sim": {n: [] for n in ENCODERS}, "rank": {n: [] for n in ENCODERS}}
    per_speaker = {}

    def score(row: dict, y: np.ndarray, sr: int, sid: str, true_index: int) -> dict:
        sims = {}
        for n, enc in encoders.items():
            emb = unit(enc.embed(y, sr))
            sims[n] = float(emb @ enrol[n][sid])
            row["sim"][n].append(sims[n])
            row["rank"][n].append(rank_of(emb, bank[n], true_index))
        return sims

    for s in speakers:
        sid = s.name
        true_index = names.index(sid)
        for n in ENCODERS:  # real held-out speech: leave-one-out enrolment for the true speaker
            for k, e in enumerate(held_emb[n][sid]):
                others = unit(np.mean([x for j, x in enumerate(held_emb[n][sid]) if j != k], axis=0))
                real["sim"][n].append(float(e @ others))
                b = bank[n].copy()
                b[true_index] = others
                real["rank"][n].append(rank_of(e, b, true_index))
        ref = np.concatenate([read(f)[0] for f in refs[sid]])
        ref_sr = read(refs[sid][0])[1]
        consent = "benchmark: LibriSpeech, CC BY 4.0"
        profiles, create_cpu = {}, {}
        if "knn" in args.engines:
            t0 = time.process_time()
            profiles["knn"] = create_voice((ref, ref_sr), name=None, consent=consent, engine="knn")
            create_cpu["knn"] = time.process_time() - t0
        fit_facts = {}
        for method, (plain, hybrid_row) in FIT_ROWS.items():
            wanted = plain in args.engines or hybrid_row in args.engines
            if not wanted and not ("kokoro" in args.engines and not fit_facts and method == "gradient"):
                continue
            t0 = time.process_time()
            engine = "hybrid" if hybrid_row in args.engines else "kokoro"
            made = create_voice((ref, ref_sr), name=None, consent=consent, engine=engine,
                                fit_seconds=args.fit_seconds if wanted else 0.0, fit_method=method)
            fit_facts[method] = made.facts
            if engine == "hybrid":
                create_cpu[hybrid_row] = time.process_time() - t0
                profiles[hybrid_row] = made
            profiles[plain] = replace(made, engine="kokoro", data=None)
            # the fit's own CPU time (the unfitted voice: its first step, the choice among the shipped voices)
            create_cpu[plain] = made.facts["kokoro_fit_seconds"]
            start = made.facts["kokoro_start_voice"]
            profiles["kokoro"] = replace(made, engine="kokoro", data=None, style=_styles()[start])
        for k, v in create_cpu.items():
            if k in rows:
                rows[k]["create_cpu_s"].append(v)
        spk = {k: {n: [] for n in ENCODERS} for k in systems}
        for text in sentences:
            t0 = time.process_time()
            speech = synthesize(text)
            outputs = {"base": (speech.audio, speech.sample_rate, time.process_time() - t0)}
            for e in args.engines:
                t0 = time.process_time()
                out = speak(text, voice=profiles[e])
                outputs[e] = (out.audio, out.sample_rate, time.process_time() - t0)
            for k, (y, sr, compute) in outputs.items():
                sims = score(rows[k], y, sr, sid, true_index)
                for n in ENCODERS:
                    spk[k][n].append(sims[n])
                hyp = " ".join(seg.text for seg in transcribe(y, sr))
                n_words = len(text.split())
                rows[k]["wer_err"] += word_error_rate(text, hyp) * n_words
                rows[k]["wer_words"] += n_words
                rows[k]["compute"] += compute
                rows[k]["seconds"] += len(y) / sr
        spk_es = {k: {n: [] for n in ENCODERS} for k in es_systems}
        for text in sentences_es:
            for k in es_systems:
                t0 = time.process_time()
                if k == "kokoro-base":
                    out = speak(text, options=SpeakOptions(engine="kokoro", language="es"))
                else:
                    out = speak(text, voice=profiles[k], options=SpeakOptions(language="es"))
                compute = time.process_time() - t0
                sims = score(rows_es[k], out.audio, out.sample_rate, sid, true_index)
                for n in ENCODERS:
                    spk_es[k][n].append(sims[n])
                x = resample(out.audio, out.sample_rate, 16000)
                segments, _ = asr_es.transcribe(x, language="es", beam_size=5, vad_filter=False,
                                                condition_on_previous_text=False)
                hyp = " ".join(seg.text.strip() for seg in segments)
                n_words = len(text.split())
                rows_es[k]["wer_err"] += wer_multilingual(text, hyp) * n_words
                rows_es[k]["wer_words"] += n_words
                rows_es[k]["compute"] += compute
                rows_es[k]["seconds"] += len(out.audio) / out.sample_rate
        per_speaker[sid] = {
            "reference_speech_s": next(iter(profiles.values())).speech_seconds if profiles else None,
            "create_cpu_s": {k: round(v, 1) for k, v in create_cpu.items()},
            "kokoro_fits": {m: {k: f.get(k) for k in ("kokoro_start_voice", "kokoro_start_score", "kokoro_fit_score",
                                                      "kokoro_fit_evaluations", "kokoro_fit_seconds")}
                            for m, f in fit_facts.items()},
            "real_sim": {n: round(float(np.mean(real["sim"][n][-len(held_emb[n][sid]):])), 3) for n in ENCODERS},
            "en": {k: {n: round(float(np.mean(v[n])), 3) for n in ENCODERS} for k, v in spk.items()},
            "es": {k: {n: round(float(np.mean(v[n])), 3) for n in ENCODERS} for k, v in spk_es.items()
                   if v[ENCODERS[0]]},
        }
        print(f"speaker {sid}: {json.dumps(per_speaker[sid])}", file=sys.stderr, flush=True)
        partial = args.out.with_name(args.out.stem + ".partial.json")
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"per_speaker": per_speaker}, indent=2))

    def summary(r: dict) -> dict:
        out = {}
        for n in ENCODERS:
            ranks = np.array(r["rank"][n])
            out[n] = {"similarity": round(float(np.mean(r["sim"][n])), 3), "top1": round(float(np.mean(ranks == 1)), 3),
                      "top5": round(float(np.mean(ranks <= 5)), 3)}
        out["trials"] = int(len(r["rank"][ENCODERS[0]]))
        if "wer_words" in r:
            out.update(wer=round(r["wer_err"] / max(1, r["wer_words"]), 3),
                       rtf=round(r["compute"] / max(1e-9, r["seconds"]), 3))
            if r["create_cpu_s"]:
                out["create_cpu_s"] = round(float(np.mean(r["create_cpu_s"])), 1)
        return out

    result = {
        "data_dir": str(args.data_dir), "gallery_speakers": len(gallery_files), "candidates": len(names),
        "test_speakers": [s.name for s in speakers], "sentences": len(sentences), "sentences_es": len(sentences_es),
        "fit_cpu_seconds": args.fit_seconds, "encoders": list(ENCODERS),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "wer_asr": {"en": "whisper tiny.en (int8)", "es": "whisper base multilingual (int8)"},
        "real_heldout": summary(real), "systems": {k: summary(rows[k]) for k in systems},
        "systems_es": {k: summary(rows_es[k]) for k in es_systems} if sentences_es else {},
        "per_speaker": per_speaker,
    }
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


def merge(results: list[dict]) -> dict:
    """Results of disjoint speakers joined: every rate and mean weighted by its trials (the sentences are the same
    for every speaker, so WER words and trials are in proportion); creation CPU and RTF are plain means."""
    out = dict(results[0])
    out["test_speakers"] = [s for r in results for s in r["test_speakers"]]
    out["per_speaker"] = {k: v for r in results for k, v in r["per_speaker"].items()}

    def join(rows: list[dict]) -> dict:
        n = [r["trials"] for r in rows]
        joined = {"trials": int(sum(n))}
        for enc in ENCODERS:
            joined[enc] = {k: round(float(np.average([r[enc][k] for r in rows], weights=n)), 3)
                           for k in ("similarity", "top1", "top5")}
        for k in ("wer", "rtf", "create_cpu_s"):
            if all(k in r for r in rows):
                joined[k] = round(float(np.average([r[k] for r in rows], weights=n if k == "wer" else None)), 3)
        return joined

    out["real_heldout"] = join([r["real_heldout"] for r in results])
    for key in ("systems", "systems_es"):
        out[key] = {name: join([r[key][name] for r in results]) for name in results[0].get(key, {})}
    return out


def table(result: dict) -> str:
    """A markdown table of the result (the README's)."""
    head = ("| system | lang | sim resemblyzer | top-1 / top-5 | sim voicefilter | top-1 / top-5 | WER | create CPU s "
            "| RTF |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]

    def line(name: str, lang: str, r: dict) -> str:
        cells = [name, lang]
        for n in ENCODERS:
            e = r[n]
            cells += [f"{e['similarity']:.3f}", f"{e['top1'] * 100:.0f} % / {e['top5'] * 100:.0f} %"]
        cells += [f"{r['wer'] * 100:.1f} %" if "wer" in r else "-",
                  f"{r['create_cpu_s']:.0f}" if "create_cpu_s" in r else "-",
                  f"{r['rtf']:.2f}" if "rtf" in r else "-"]
        return "| " + " | ".join(cells) + " |"

    lines.append(line("real held-out speech", "en", result["real_heldout"]))
    for k, r in result["systems"].items():
        lines.append(line(k, "en", r))
    for k, r in result.get("systems_es", {}).items():
        lines.append(line(k, "es", r))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
