"""The lip-sync engines the studio knows, registered lazily (nothing heavy is imported here)."""
from __future__ import annotations

from typing import Optional

from ..errors import InputError
from ..log import get_logger
from .base import ENGINES, LipSyncEngine

log = get_logger("lipsync")

# General-purpose networks that "auto" picks when their weights are installed, best first. Actor models
# (trained on one person) are only used when asked for by name: on another face they do worse than visemes.
GENERAL_CHECKPOINTS = ("wav2lip_gan", "wav2lip")


def _general_checkpoint() -> Optional[str]:
    try:
        from .. import checkpoints
    except ImportError:  # pragma: no cover
        return None
    for name in GENERAL_CHECKPOINTS:
        if checkpoints.is_available(name):
            return name
    return None


@ENGINES.register("visemes", "weights-free: the person's own mouths from the footage (a photo: warped lips, shaded interior), timed by the speech")
def _visemes(device: str = "cpu", model: Optional[str] = None, batch_size: int = 32) -> LipSyncEngine:
    if model:
        raise InputError("the visemes engine uses no model; drop --model or choose --engine wav2lip")
    from .visemes import VisemeEngine

    return VisemeEngine(device=device)


@ENGINES.register("visemes-v1", "the first weights-free engine (drawn flat interior, its original timing), for comparison")
def _visemes_v1(device: str = "cpu", model: Optional[str] = None, batch_size: int = 32) -> LipSyncEngine:
    if model:
        raise InputError("the visemes-v1 engine uses no model; drop --model")
    from .visemes import VisemeEngine

    return VisemeEngine(device=device, version=1)


@ENGINES.register(
    "wav2lip",
    "Wav2Lip-compatible network: official checkpoints (non-commercial) or an actor model trained with `studio train`",
)
def _wav2lip(device: str = "cpu", model: Optional[str] = None, batch_size: int = 32) -> LipSyncEngine:
    from .neural import Wav2LipEngine

    checkpoint = model or _general_checkpoint()
    if checkpoint is None:
        raise InputError(
            "the wav2lip engine needs a checkpoint: pass --model NAME_OR_PATH (see `studio checkpoints`), "
            "or use --engine visemes which needs no weights"
        )
    return Wav2LipEngine(checkpoint=checkpoint, device=device, batch_size=batch_size)


def choose_engine(name: str, model: Optional[str]) -> str:
    """Resolve "auto": a neural engine when a model is given or a general checkpoint is installed, else visemes."""
    if name != "auto":
        ENGINES.entry(name)  # raises a clear InputError for unknown names
        return name
    if model or _general_checkpoint():
        return "wav2lip"
    return "visemes"


def create_engine(name: str, model: Optional[str], device: str, batch_size: int = 32) -> tuple[str, LipSyncEngine]:
    chosen = choose_engine(name, model)
    log.info("lip-sync engine: %s%s", chosen, f" (model {model})" if model else "")
    return chosen, ENGINES.create(chosen, device=device, model=model, batch_size=batch_size)
