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
