"""Signed provenance for every output: what went in, which models and settings, whose consent, when.

Two records, made by :func:`seal` right after an output is rendered:

- a **C2PA manifest** inside the file (MP4, WAV, FLAC), signed with the local ES256 certificate
  (``keys.c2pa_identity``); its hash binding covers the whole file, so any change to it shows;
- a **JSON sidecar** ``<output>.provenance.json``: the claim (inputs' sha256, models and versions, settings,
  consents, time, job id) plus the output's sha256 and its streams' sha256, signed with the installation's
  ed25519 key (``keys.provenance_key``). The streams' hashes say *what* changed in a tampered copy (the picture,
  the sound, or only the container).

File names only are recorded, never folders (a record travels with the file; the server's paths stay private).
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..hashing import file_sha256, file_sha256_memo
from ..log import get_logger
from . import keys

log = get_logger("trust.provenance")

FORMAT = "studio-provenance/1"
SIDECAR_SUFFIX = ".provenance.json"
C2PA_LABEL = "org.studio.provenance"
# C2PA/IPTC: media made by a trained model (lip-sync networks, cloned voices)
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
C2PA_FORMATS = {".mp4": "video/mp4", ".wav": "audio/wav", ".flac": "audio/flac"}


@dataclass(frozen=True)
class SealedOutput:
    path: Path
    sidecar: Path
    job_id: str
    c2pa: bool  # a C2PA manifest was embedded
    seconds: float


def sidecar_path(path) -> Path:
    p = Path(path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def studio_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("studio")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def model_sha256(path) -> str:
    """sha256 of a (large, unchanging) model file, hashed once per process for each size and mtime."""
    return file_sha256_memo(os.path.realpath(path))


def stream_hashes(path) -> dict:
    """sha256 of each stream's packets ({"video": ..., "audio": ...}), read without decoding (ffmpeg streamhash).
    Unchanged by a remux or by metadata edits; changed by any edit of the picture or the sound."""
    from ..video.io import ffmpeg_exe

    res = subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0", "-c", "copy",
                          "-f", "streamhash", "-hash", "sha256", "-"], capture_output=True)
    if res.returncode != 0:
        return {}
    out: dict = {}
    kinds = {"v": "video", "a": "audio"}
    for line in res.stdout.decode(errors="replace").splitlines():
        parts = line.strip().split(",")
        if len(parts) == 3 and parts[1] in kinds and "=" in parts[2]:
            out.setdefault(kinds[parts[1]], parts[2].split("=", 1)[1].lower())
    return out


def describe_input(path) -> dict:
    """What a record says about an input file: its name (never its folder), size and sha256."""
    p = Path(path)
    return {"name": p.name, "bytes": p.stat().st_size, "sha256": file_sha256(p)}


def describe_text(text: str) -> dict:
    """The words an output was made to say, as a hash (the record may travel where the script should not)."""
    return {"sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(), "characters": len(text)}


def canonical(obj) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def seal(out, *, kind: str, inputs: Optional[dict] = None, text: Optional[str] = None,
         models: Optional[list] = None, settings: Optional[dict] = None, consents: Optional[dict] = None,
         marks: Optional[dict] = None, job_id: Optional[str] = None) -> SealedOutput:
    """Embed a C2PA manifest into ``out`` (when its format allows) and write its signed sidecar.

    ``inputs`` maps a role ("face", "audio", ...) to a file path; ``models`` are plain dicts (name, kind, version
    or step, sha256, consent); ``settings`` and ``consents`` plain dicts. On any failure the output (and its sidecar)
    is removed and the error raised: the studio does not leave an output without its provenance.
    """
    import time

    t0 = time.perf_counter()
    out = Path(out)
    sidecar = sidecar_path(out)
    job_id = job_id or new_job_id()
    claim = {
        "format": FORMAT,
        "job_id": job_id,
        "kind": kind,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "generator": {"name": "studio", "version": studio_version()},
        "digital_source_type": DIGITAL_SOURCE_TYPE,
        "inputs": {role: describe_input(p) for role, p in (inputs or {}).items() if p is not None},
        "text": describe_text(text) if text is not None else None,
        "models": list(models or []),
        "settings": dict(settings or {}),
        "consents": dict(consents or {}),
        "marks": dict(marks or {}),
    }
    try:
        mime = C2PA_FORMATS.get(out.suffix.lower())
        embedded = False
        if mime is not None:
            _embed_c2pa(out, mime, claim)
            embedded = True
        claim["output"] = {"name": out.name, "bytes": out.stat().st_size, "sha256": file_sha256(out),
                           "streams": stream_hashes(out), "c2pa": embedded}
        key = keys.provenance_key()
        record = {"claim": claim,
                  "signature": {"alg": "ed25519",
                                "public_key": base64.b64encode(keys.public_key_bytes(key)).decode(),
                                "value": base64.b64encode(key.sign(canonical(claim))).decode()}}
        _write_atomic(sidecar, json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8"))
    except BaseException:
        out.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - t0
    log.info("sealed %s (job %s, c2pa %s) in %.2f s", out.name, job_id, embedded, seconds)
    return SealedOutput(out, sidecar, job_id, embedded, round(seconds, 3))


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _c2pa():
    try:
        import c2pa
    except Exception as e:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(f"c2pa-python cannot be imported ({type(e).__name__}: {e}); "
                                     "run `bash scripts/setup.sh` to install it") from None
    return c2pa


def _embed_c2pa(out: Path, mime: str, claim: dict) -> None:
    """Sign ``out`` in place: the signed copy goes to a temporary file beside it, then replaces it."""
    c2pa = _c2pa()
    ident = keys.c2pa_identity()
    manifest = {
        "claim_generator_info": [{"name": "studio", "version": claim["generator"]["version"]}],
        "title": out.name,
        "format": mime,
        "assertions": [
            {"label": "c2pa.actions.v2",
             "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE,
                                   "softwareAgent": {"name": "studio", "version": claim["generator"]["version"]}}]}},
            {"label": C2PA_LABEL, "data": claim},
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, ident.chain_pem, ident.key_pem,
                                                       None))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".signing{out.suffix}", dir=out.parent)
    os.close(fd)
    try:
        with c2pa.Builder.from_json(manifest) as builder, open(out, "rb") as src, open(tmp, "w+b") as dst:
            builder.sign(signer, mime, src, dst)
        os.chmod(tmp, os.stat(out).st_mode & 0o777)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        try:
            signer.close()
        except Exception:  # already consumed by the builder
            pass


def read_c2pa(path) -> Optional[dict]:
    """The C2PA manifest of ``path`` checked against the local CA: {"state", "failures", "claim"}; None if none."""
    c2pa = _c2pa()
    mime = C2PA_FORMATS.get(Path(path).suffix.lower())
    if mime is None:
        mime = {".m4a": "audio/mp4", ".mov": "video/quicktime", ".mp3": "audio/mpeg"}.get(Path(path).suffix.lower())
    if mime is None:
        return None
    ident = keys.c2pa_identity()
    settings = c2pa.Settings.from_dict({"verify": {"verify_trust": True},
                                        "trust": {"trust_anchors": ident.ca_pem.decode()}})
    context = c2pa.Context(settings=settings)
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(mime, f, context=context)
            if reader is None:
                return None
            with reader:
                state = reader.get_validation_state()
                results = reader.get_validation_results() or {}
                active = reader.get_active_manifest() or {}
    except c2pa.C2paError as e:  # a manifest too damaged to read is a damaged manifest, not "none"
        return {"state": "Invalid", "failures": [f"unreadable manifest: {e}"], "claim": None}
    failures = [f"{r.get('code')}: {r.get('explanation', '')}".strip()
                for r in (results.get("activeManifest") or {}).get("failure", [])]
    claim = next((a.get("data") for a in active.get("assertions", []) if a.get("label") == C2PA_LABEL), None)
    return {"state": state, "failures": failures, "claim": claim}
