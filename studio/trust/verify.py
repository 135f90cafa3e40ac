"""``studio verify FILE``: is this the studio's output, and is it still what the studio wrote?

Checks, each reported on its own: the audio mark (Perth, with its confidence), the video mark (``video_mark``: found
or not, the job id it carries, its confidence and per-frame bit agreement), the C2PA manifest inside the file
(present, signature and hash binding valid, signer certificate from this installation's CA), the signed JSON
sidecar ``FILE.provenance.json`` (signature valid, and the file's bytes and its video and audio streams still
matching the recorded sha256). Verdicts:

- ``tampered``: a manifest or sidecar exists but no longer matches the file, or the video mark carries another job
  id than the record (``mismatches`` names what);
- ``made with studio``: at least one mark or record found and nothing contradicts it;
- ``no studio marks found``: nothing of the studio's (not an error).
"""
from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import InputError
from ..log import get_logger
from . import audio_mark, video_mark
from .provenance import FORMAT, canonical, file_sha256, read_c2pa, sidecar_path, stream_hashes

log = get_logger("trust.verify")

TAMPERED = "tampered"
MADE = "made with studio"
NOTHING = "no studio marks found"


@dataclass(frozen=True)
class VerifyResult:
    path: Path
    verdict: str  # TAMPERED, MADE or NOTHING
    audio_mark: Optional[float]  # Perth's confidence in [0, 1]; None when the file has no sound
    audio_marked: bool
    manifest: bool  # a C2PA manifest is in the file
    manifest_state: Optional[str]  # C2PA's validation state: "Trusted", "Valid" or "Invalid"
    sidecar: bool  # FILE.provenance.json exists
    signature_valid: Optional[bool]  # the sidecar's ed25519 signature (None: no sidecar)
    signer_is_local: Optional[bool]  # signed with this installation's key
    content_matches: Optional[bool]  # the file still matches the recorded hashes (None: nothing recorded)
    mismatches: tuple = ()  # what no longer matches, in words
    job_id: Optional[str] = None
    kind: Optional[str] = None
    created: Optional[str] = None
    consents: Optional[dict] = None
    seconds: float = 0.0
    video_mark: Optional[video_mark.VideoMarkResult] = None  # None: the file has no picture

    @property
    def video_marked(self) -> bool:
        return bool(self.video_mark and self.video_mark.found)

    def as_dict(self) -> dict:
        """Plain values for JSON (``studio verify --json``)."""
        vm = self.video_mark
        return {"path": str(self.path), "verdict": self.verdict,
                "audio_mark": {"found": self.audio_marked, "confidence": self.audio_mark},
                "video_mark": None if vm is None else {
                    "found": vm.found, "job": vm.job, "confidence": vm.confidence, "magic_ok": vm.magic_ok,
                    "crc_ok": vm.crc_ok, "frames_used": vm.frames_used, "frames_read": vm.frames_read,
                    "bit_agreement": vm.bit_agreement},
                "manifest": {"present": self.manifest, "state": self.manifest_state},
                "sidecar": {"present": self.sidecar, "signature_valid": self.signature_valid,
                            "signer_is_local": self.signer_is_local},
                "content_matches": self.content_matches, "mismatches": list(self.mismatches),
                "job_id": self.job_id, "kind": self.kind, "created": self.created, "consents": self.consents,
                "seconds": self.seconds}

    @property
    def tampered(self) -> bool:
        return self.verdict == TAMPERED

    def summary(self) -> str:
        lines = [f"{self.path.name}: {self.verdict}"]
        if self.audio_mark is None:
            lines.append("audio mark: no sound track")
        else:
            lines.append(f"audio mark: {'found' if self.audio_marked else 'not found'} "
                         f"(confidence {self.audio_mark:.2f})")
        lines.append("video mark: " + ("no picture" if self.video_mark is None else self.video_mark.describe()))
        lines.append("C2PA manifest: " + (f"present, {self.manifest_state}" if self.manifest else "none"))
        if self.sidecar:
            sig = {True: "valid", False: "INVALID"}[bool(self.signature_valid)]
            who = "" if self.signer_is_local is None else (" (this installation's key)" if self.signer_is_local
                                                          else " (another installation's key)")
            lines.append(f"provenance record: signature {sig}{who}")
        else:
            lines.append("provenance record: none beside the file")
        if self.content_matches is not None:
            lines.append("content: " + ("matches the recorded hashes" if self.content_matches
                                        else "does NOT match the recorded hashes"))
        for m in self.mismatches:
            lines.append(f"  - {m}")
        if self.job_id:
            lines.append(f"job {self.job_id}: {self.kind}, made {self.created}")
        for role, text in (self.consents or {}).items():
            lines.append(f"consent ({role}): {text if text else 'none recorded'}")
        return "\n".join(lines)


def _check_sidecar(path: Path, sidecar: Path):
    """-> (signature_valid, signer_is_local, claim, mismatches, content_matches)"""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from . import keys

    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        claim, sig = record["claim"], record["signature"]
        if claim.get("format") != FORMAT or sig.get("alg") != "ed25519":
            return False, None, claim, [f"{sidecar.name} is not a {FORMAT} record"], None
        public = base64.b64decode(sig["public_key"])
        value = base64.b64decode(sig["value"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return False, None, None, [f"{sidecar.name} is damaged ({type(e).__name__})"], None
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(public).verify(value, canonical(claim))
        valid = True
    except (InvalidSignature, ValueError):
        valid = False
    local = None
    own = keys.keys_dir() / "provenance-ed25519.pem"
    if own.exists():
        local = keys.public_key_bytes(keys.provenance_key()) == public
    mismatches = [] if valid else ["the provenance record's signature does not match its content (the record was edited)"]
    output = claim.get("output") or {}
    content = None if not output.get("sha256") else file_sha256(path) == output["sha256"]
    if content is False:
        now = stream_hashes(path)
        then = output.get("streams") or {}
        changed = [kind for kind in ("video", "audio") if kind in then and now.get(kind) != then[kind]]
        missing = [kind for kind in ("video", "audio") if kind in then and kind not in now]
        for kind in changed:
            mismatches.append(f"the {kind} stream differs from the one recorded"
                              + (" (it is gone)" if kind in missing else ""))
        if not changed:
            mismatches.append("the file's bytes differ from the recorded ones while its streams match "
                              "(remuxed or its metadata edited)")
    return valid, local, claim, mismatches, content


def verify(path, *, sidecar=None, max_frames: Optional[int] = video_mark.MAX_FRAMES) -> VerifyResult:
    """Check ``path`` (a video or audio file) for the studio's marks and records; see the module docstring.
    The video mark is looked for in the first ``max_frames`` frames (None: all)."""
    from ..video.io import check_input_file, probe

    t0 = time.perf_counter()
    path = check_input_file(path, "file to verify")
    info = probe(path, "file to verify")
    mismatches: list[str] = []

    confidence = None
    if info.has_audio:
        from ..audio.io import load_audio

        try:
            audio, sr = load_audio(path, what="file to verify", allow_silent=True)
            confidence = audio_mark.detect(audio, sr)
        except InputError as e:
            log.info("no audio to check in %s: %s", path.name, e)
    marked = confidence is not None and confidence >= audio_mark.DETECT_THRESHOLD

    vmark = None
    if info.has_video and not info.is_image:
        vmark = video_mark.read_video_mark(path, max_frames=max_frames)

    manifest = read_c2pa(path)
    manifest_state = manifest["state"] if manifest else None
    if manifest and manifest_state not in ("Valid", "Trusted"):
        codes = "; ".join(manifest["failures"][:4]) or "no reason given"
        mismatches.append(f"the C2PA manifest no longer matches the file ({codes})")

    side = Path(sidecar) if sidecar is not None else sidecar_path(path)
    signature_valid = signer_local = claim = None
    content = None
    if side.is_file():
        signature_valid, signer_local, claim, problems, content = _check_sidecar(path, side)
        mismatches += problems
    if claim is None and manifest:
        claim = manifest["claim"]
    if manifest and not side.is_file():
        # the sidecar was not kept: the manifest's own record is the claim (its hash binding covers the file)
        content = manifest_state in ("Valid", "Trusted")

    if vmark is not None and vmark.found and (claim or {}).get("job_id") \
            and not str(claim["job_id"]).startswith(vmark.job):
        mismatches.append(f"the video mark carries job {vmark.job}, the record job {claim['job_id']} "
                          "(the record belongs to another render)")
    found = marked or (vmark is not None and vmark.found) or manifest is not None or side.is_file()
    verdict = TAMPERED if mismatches else (MADE if found else NOTHING)
    claim = claim or {}
    result = VerifyResult(path, verdict, None if confidence is None else round(confidence, 3), marked,
                          manifest is not None, manifest_state, side.is_file(), signature_valid, signer_local,
                          content, tuple(mismatches), claim.get("job_id"), claim.get("kind"), claim.get("created"),
                          claim.get("consents"), round(time.perf_counter() - t0, 3), vmark)
    log.info("verified %s: %s in %.2f s", path.name, verdict, result.seconds)
    return result
