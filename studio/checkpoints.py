"""The checkpoint registry, and loading/saving of lip-sync networks.

Three on-disk formats load:
- "wav2lip-official": the published `.pth` dicts {state_dict, optimizer, global_step, global_epoch} whose keys
  carry DataParallel's `module.` prefix (wav2lip.pth, wav2lip_gan.pth, lipsync_expert.pth);
- "torchscript": the later `.pt` releases, serialised TorchScript modules;
- "studio": our own format, written by :func:`save_checkpoint`, with the model's config and the training
  metadata (train config, data fingerprint, step, metrics, licence/attribution) inside.

A name or a path is accepted by the library and the CLI; the app accepts names only. Names are looked up in the
registry below (official weights, which cannot be downloaded here: the error says where to put them) and among our
own models: `checkpoints/*.pt` in the repository and `studio.paths.models_dir()`.

Safety: a pickle can run any code when it is loaded, so every pickled checkpoint (ours and the official `.pth`)
is read with ``torch.load(weights_only=True)``, which only rebuilds tensors and plain Python values; our metadata is
stored as plain types for that reason. TorchScript files are programs, so they load only from the folders the
studio manages (``managed_folders()``), never from an arbitrary path.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .errors import InputError, MissingCheckpointError
from .hashing import file_sha256
from .log import get_logger
from .paths import BUNDLED_CHECKPOINTS, cache_dir, models_dir

log = get_logger("checkpoints")

FORMAT = "studio-lipsync"
FORMAT_VERSION = 1
NON_COMMERCIAL = "Wav2Lip weights: research / non-commercial use only (see the Wav2Lip repository's licence)"


BASE_LICENCE = ("CC BY 4.0 (derived from GRID speaker s1: Cooke, Barker, Cunningham & Shao 2006) + MIT (talking-head "
                "sample clips of FuxiVirtualHuman/styletalk and KwaiVGI/LivePortrait); attribution in meta")
BASE_SHA256 = "77ed53fdb26b7f70834bb285412821d28247d00daedb704061c8ab33f6913cb2"
BASE_EXPERT_SHA256 = "b727e4d736bd396ca0cc5a4b48c8e60b5601cc4b5c9529089c24672116db0b27"


@dataclass(frozen=True)
class CheckpointInfo:
    name: str
    filename: str
    kind: str  # "wav2lip" | "syncnet" | "disc"
    licence: str
    source: str
    sha256: Optional[str] = None  # None: not published; the file's hash is recorded on first load
    notes: str = ""

    def path(self) -> Path:
        """Where the file is looked for: user models folder first, then the repository's checkpoints/."""
        for folder in (models_dir(), BUNDLED_CHECKPOINTS):
            if (folder / self.filename).exists():
                return folder / self.filename
        return models_dir() / self.filename

    def installed(self) -> bool:
        return self.path().exists()

    def describe(self) -> str:
        state = f"installed at {self.path()}" if self.installed() else f"missing (put it at {self.path()})"
        return f"{self.name} [{self.kind}] {state}; licence: {self.licence}; source: {self.source}"


REGISTRY: dict[str, CheckpointInfo] = {c.name: c for c in [
    CheckpointInfo("wav2lip", "wav2lip.pth", "wav2lip", NON_COMMERCIAL,
                   "Wav2Lip repository (Rudrabha/Wav2Lip), README 'Getting the weights'",
                   notes="most accurate lip-sync of the published generators"),
    CheckpointInfo("wav2lip_gan", "wav2lip_gan.pth", "wav2lip", NON_COMMERCIAL,
                   "Wav2Lip repository (Rudrabha/Wav2Lip), README 'Getting the weights'",
                   notes="slightly less accurate, better visual quality"),
    CheckpointInfo("lipsync_expert", "lipsync_expert.pth", "syncnet", NON_COMMERCIAL,
                   "Wav2Lip repository (Rudrabha/Wav2Lip), README 'Getting the weights'",
                   notes="the SyncNet_color expert used for training and sync scores"),
    CheckpointInfo("wav2lip_sd_gan", "Wav2Lip-SD-GAN.pt", "wav2lip", NON_COMMERCIAL,
                   "later TorchScript release of the Wav2Lip authors", notes="TorchScript module"),
    CheckpointInfo("wav2lip_sd_nogan", "Wav2Lip-SD-NOGAN.pt", "wav2lip", NON_COMMERCIAL,
                   "later TorchScript release of the Wav2Lip authors", notes="TorchScript module"),
    # bundled in checkpoints/: the start of personalisation (studio.lipsync.personalize), trained by
    # scripts/train_base.py; their training config, data and metrics are in the files' meta
    CheckpointInfo("base", "base.pt", "wav2lip", BASE_LICENCE, "bundled; trained with scripts/train_base.py",
                   sha256=BASE_SHA256, notes="multi-person base generator (96 px, width 0.25) for personalisation"),
    CheckpointInfo("base_expert", "base_expert.pt", "syncnet", BASE_LICENCE,
                   "bundled; trained with scripts/train_base.py", sha256=BASE_EXPERT_SHA256,
                   notes="sync expert trained on the same people, shipped with base"),
]}


@dataclass(frozen=True)
class LoadedCheckpoint:
    kind: str
    arch: dict
    state_dict: dict
    meta: dict = field(default_factory=dict)
    source_format: str = "studio"
    path: Optional[Path] = None
    scripted: object = None  # the TorchScript module when its keys do not map onto our classes


def _own_models() -> dict[str, Path]:
    """Our trained models by name: <name>.pt in the repository's checkpoints/ and in the user's models folder."""
    found = {}
    for folder in (BUNDLED_CHECKPOINTS, models_dir()):
        if folder.is_dir():
            for p in sorted(folder.glob("*.pt")):
                found[p.stem] = p
            for p in sorted(folder.glob("*/model.pt")):  # training runs keep a folder per model
                found[p.parent.name] = p
    return found


def managed_folders() -> tuple[Path, ...]:
    """The folders whose files the studio itself puts there (or a user installs on purpose): the only places from
    which formats that run code on loading (TorchScript) are accepted."""
    return (models_dir(), BUNDLED_CHECKPOINTS)


def is_managed(path: Path) -> bool:
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(folder)) for folder in managed_folders())


def installed_names() -> list[str]:
    """Names of every checkpoint that is installed now: registry entries with their file, and our own models."""
    names = [name for name, info in REGISTRY.items() if info.installed()]
    names += [name for name in _own_models() if name not in REGISTRY]
    return names


def resolve(name_or_path, *, allow_paths: bool = True) -> Path:
    """A checkpoint name or a path -> an existing file, or MissingCheckpointError saying where to put it.

    With ``allow_paths=False`` (the app, any remote caller) only names are accepted and no message tells whether
    some path exists on this machine."""
    if name_or_path is None or str(name_or_path).strip() == "":
        raise InputError("no checkpoint was given")
    text = str(name_or_path).strip()
    if not allow_paths:
        return _resolve_name(text)
    p = Path(text).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        raise InputError(f"checkpoint {p} is a directory; give the checkpoint file inside it")
    own = _own_models()  # scanned once per call
    if text in REGISTRY or text in own:
        return _resolve_name(text, own)
    if any(sep in text for sep in ("/", "\\")) or p.suffix in (".pt", ".pth"):
        raise MissingCheckpointError(f"checkpoint file {p} does not exist")
    return _resolve_name(text, own)


def _resolve_name(text: str, own: Optional[dict] = None) -> Path:
    if text in REGISTRY:
        info = REGISTRY[text]
        if info.installed():
            return info.path()
        raise MissingCheckpointError(
            f"checkpoint {text!r} is not installed. It cannot be downloaded offline: get {info.filename} from "
            f"{info.source} and put it at {models_dir() / info.filename} (or {BUNDLED_CHECKPOINTS / info.filename}). "
            f"Licence: {info.licence}."
        )
    own = _own_models() if own is None else own
    if text in own:
        return own[text]
    installed = installed_names()
    raise InputError(f"unknown model {text!r}; installed models: {', '.join(installed) or 'none'} "
                     f"(`studio checkpoints` lists every known name and where its file goes)")


def is_available(name: str) -> bool:
    try:
        resolve(name)
        return True
    except (InputError, MissingCheckpointError):
        return False


def list_checkpoints() -> list[CheckpointInfo]:
    """The registry's entries plus our own models found on disk."""
    out = list(REGISTRY.values())
    for name, path in _own_models().items():
        if name not in REGISTRY:
            out.append(CheckpointInfo(name, str(path), "wav2lip", "see the checkpoint's metadata", "trained with studio"))
    return out


def sha256_of(path: Path) -> str:
    """sha256 of a file, cached by path, size and mtime so big files are hashed once. The cache lives in the
    studio's cache folder, never beside the file (a checkout stays clean, a read-only folder works)."""
    st = path.stat()
    where = hashlib.sha1(os.fsencode(os.path.realpath(path))).hexdigest()[:20]
    cache = cache_dir() / "sha256" / f"{where}.json"
    try:
        data = json.loads(cache.read_text())
        if data["size"] == st.st_size and data["mtime"] == st.st_mtime:
            return data["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = file_sha256(path)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(dict(size=st.st_size, mtime=st.st_mtime, sha256=digest)))
    except OSError:
        pass  # a read-only folder: hash again next time
    return digest


def _verify(path: Path) -> None:
    for info in REGISTRY.values():
        if path.name == info.filename and info.sha256:
            digest = sha256_of(path)
            if digest != info.sha256:
                raise InputError(
                    f"{path} does not match the published {info.name} (sha256 {digest}, expected {info.sha256}); "
                    "the file is damaged or a different model: download it again")


def _strip_module(state: dict) -> dict:
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _guess_kind(state: dict) -> str:
    if any(k.startswith("face_decoder_blocks") for k in state):
        return "wav2lip"
    if any(k.startswith("binary_pred") for k in state):
        return "disc"
    if any(k.startswith("face_encoder.") for k in state):
        return "syncnet"
    raise InputError("the checkpoint's weights are not a Wav2Lip generator, SyncNet_color or discriminator")


def load_checkpoint(name_or_path, map_location="cpu", *, allow_paths: bool = True) -> LoadedCheckpoint:
    """Load any of the three formats into a LoadedCheckpoint (weights on ``map_location``).

    Pickles load with ``weights_only=True``; TorchScript only from :func:`managed_folders`."""
    import pickle

    import torch

    path = resolve(name_or_path, allow_paths=allow_paths)
    _verify(path)
    if _is_torchscript(path):
        return _load_torchscript(path, map_location)
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses any pickled object other than tensors and plain values: such a file could run code
        raise InputError(
            f"{path} holds pickled Python objects besides weights, and loading it could run code, so it is refused. "
            "Use the published checkpoint file, or a checkpoint written by studio (plain weights and metadata)"
        ) from None
    except RuntimeError as e:
        raise InputError(f"{path} is not a readable PyTorch checkpoint ({e})") from None
    except Exception as e:  # truncated files, not a checkpoint at all
        raise InputError(f"{path} is not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None
    if isinstance(data, dict) and data.get("format") == FORMAT:
        if data.get("version", 0) > FORMAT_VERSION:
            raise InputError(f"{path} was written by a newer studio (format {data['version']}); update studio")
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in data["state_dict"].items()}
        return LoadedCheckpoint(data["kind"], dict(data["arch"]), state, dict(data.get("meta", {})), "studio", path)
    if isinstance(data, dict) and "state_dict" in data:
        state = _strip_module(data["state_dict"])
        meta = {k: data[k] for k in ("global_step", "global_epoch") if k in data}
        return LoadedCheckpoint(_guess_kind(state), {}, state, meta, "wav2lip-official", path)
    if isinstance(data, dict) and data and all(hasattr(v, "shape") for v in data.values()):
        state = _strip_module(data)
        return LoadedCheckpoint(_guess_kind(state), {}, state, {}, "wav2lip-official", path)
    raise InputError(f"{path} is not a Wav2Lip or studio checkpoint")


def _is_torchscript(path: Path) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("constants.pkl") or "/code/" in n for n in z.namelist())


def _load_torchscript(path: Path, map_location) -> LoadedCheckpoint:
    import torch

    if not is_managed(path):
        raise InputError(
            f"{path} is a TorchScript module, a program that runs when it is loaded, so studio loads it only from its "
            f"own checkpoint folders: copy it into {models_dir()} and give its name (e.g. --model {path.stem})")
    try:
        scripted = torch.jit.load(str(path), map_location=map_location)
    except Exception as e:
        raise InputError(f"{path} is not a readable TorchScript module ({e})") from None
    return _from_scripted(scripted, path)


def _from_scripted(scripted, path: Path) -> LoadedCheckpoint:
    state = _strip_module(dict(scripted.state_dict()))
    try:
        kind = _guess_kind(state)
    except InputError:
        kind = "wav2lip"
    return LoadedCheckpoint(kind, {}, state, {}, "torchscript", path, scripted=scripted)


def infer_arch(kind: str, state: dict) -> dict:
    """Architecture options of a state dict without a stored config (official files: the published model)."""
    if kind == "wav2lip":
        first = state.get("face_encoder_blocks.0.0.conv_block.0.weight")
        width = first.shape[0] / 16 if first is not None else 1.0
        big = "face_decoder_blocks.7.0.conv_block.0.weight" in state
        return dict(img_size=192 if big else 96, width=width)
    return dict(img_size=96, width=1.0)


def build_model(loaded: LoadedCheckpoint):
    """An eval-mode nn.Module with the checkpoint's weights (the TorchScript module itself when needed)."""
    from .lipsync.wav2lip.models import build

    arch = loaded.arch or infer_arch(loaded.kind, loaded.state_dict)
    model = build(loaded.kind, **arch)
    missing, unexpected = model.load_state_dict(loaded.state_dict, strict=False)
    if missing or unexpected:
        if loaded.scripted is not None:
            log.info("TorchScript keys do not map onto our classes; using the scripted module as it is")
            return loaded.scripted.eval()
        raise InputError(
            f"checkpoint {loaded.path} does not fit the {loaded.kind} architecture {arch}: "
            f"{len(missing)} missing and {len(unexpected)} unexpected weights (e.g. {(missing or unexpected)[:3]})")
    return model.eval()


def save_checkpoint(path, *, kind: str, arch: dict, state_dict: dict, meta: Optional[dict] = None,
                    half: bool = False) -> Path:
    """Write our format atomically (temp file in the same folder, then rename). ``half`` stores fp16 weights."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
             for k, v in state_dict.items()}
    payload = dict(format=FORMAT, version=FORMAT_VERSION, kind=kind, arch=dict(arch), state_dict=state,
                   meta=dict(meta or {}))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
