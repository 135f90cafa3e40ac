"""The consent rule, one for voices and for faces: a statement of who agreed, and when, of at least
``MIN_CONSENT_CHARS`` characters (the same rule ``studio voice create --consent`` states)."""
from __future__ import annotations

from typing import Optional

from ..errors import InputError

MIN_CONSENT_CHARS = 10
EXAMPLE = "for example \"Anna Novak agreed on 2026-11-20\""


def check_consent(consent: Optional[str], *, purpose: str, option: str = "--consent") -> str:
    """The stripped statement, or InputError saying what to give. ``purpose`` completes "who agreed to ...",
    e.g. "have a lip-sync model trained on their face"."""
    text = (consent or "").strip()
    if not text:
        raise InputError(f"a consent statement is required ({option} \"...\"): say who agreed to {purpose}, "
                         f"and when ({EXAMPLE})")
    if len(text) < MIN_CONSENT_CHARS:
        raise InputError(f"the consent statement {text!r} is too short ({len(text)} characters): it must be at "
                         f"least {MIN_CONSENT_CHARS} characters and say who agreed to {purpose}, and when ({EXAMPLE})")
    return text


TRAIN_PURPOSE = "have a lip-sync model trained on their face"


LAUNDER_SAMPLE_FILES = 6  # footage files checked for the video mark (evenly spread over the list)
LAUNDER_FRAMES = 60  # frames read of each


def check_footage_not_marked(files, *, covered: bool) -> list:
    """No laundering of faces: footage that carries the studio's video mark (a render: a face the studio made say
    something) is refused for training a face model unless ``covered`` (the consent says the person agreed to a
    model trained on such renders). Checks up to ``LAUNDER_SAMPLE_FILES`` files spread over the list, their first
    ``LAUNDER_FRAMES`` frames each (a sample: the mark is in every changed frame). Returns what was found, as
    ``[{"file": name, "job": hex}]``, for the run's record."""
    from ..log import get_logger
    from .video_mark import read_video_mark

    files = list(files)
    if not files:
        return []
    step = max(1, len(files) // LAUNDER_SAMPLE_FILES)
    found = []
    for f in files[::step][:LAUNDER_SAMPLE_FILES]:
        r = read_video_mark(f, max_frames=LAUNDER_FRAMES)
        if r.found:
            found.append({"file": f.name if hasattr(f, "name") else str(f), "job": r.job})
    if found and not covered:
        names = ", ".join(f"{x['file']} (job {x['job']})" for x in found)
        raise InputError(f"the footage {names} carries the studio's video mark: it is a lip-synced render, not "
                         "footage of the person. Train on original footage; or, if the person agreed to a model "
                         "trained on such renders, say so in the consent statement and pass "
                         "--consent-covers-marked (consent_covers_marked=True)")
    if found:
        get_logger("trust.consent").warning("footage carries the studio's video mark; accepted: the consent covers it")
    return found
