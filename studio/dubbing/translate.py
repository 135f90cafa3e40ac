"""Translation of subtitle lines: a Translator protocol and a registry of engines.

The offline default is Apertium (Debian packages ``apertium`` and ``apertium-eng-spa``: English <-> Spanish),
rule-based and word-by-word in quality. Another engine (e.g. a CTranslate2 model folder) plugs in with
``TRANSLATORS.register``.
"""
from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from typing import Protocol, Sequence

from ..errors import InputError, MissingDependencyError
from ..log import get_logger
from ..registry import Registry

log = get_logger("dubbing.translate")

LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
                  "pt": "Portuguese", "ca": "Catalan", "ja": "Japanese", "zh": "Chinese"}
_APERTIUM_CODES = {"en": "eng", "es": "spa", "fr": "fra", "de": "deu", "it": "ita", "pt": "por", "ca": "cat"}


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def normalise_language(code: str) -> str:
    """'ES', 'es-ES', 'spa', 'Spanish' -> 'es'."""
    c = str(code or "").strip().lower().replace("_", "-")
    if not c:
        raise InputError("no language was given; use a code such as en or es")
    by_name = {v.lower(): k for k, v in LANGUAGE_NAMES.items()}
    by_three = {v: k for k, v in _APERTIUM_CODES.items()}
    c = by_name.get(c, by_three.get(c, c))
    return c.split("-")[0]


class Translator(Protocol):
    name: str

    def pairs(self) -> list[tuple[str, str]]:
        """(source, target) language codes this engine translates."""
        ...

    def translate(self, lines: Sequence[str], source: str, target: str) -> list[str]:
        """One translation per line, in order."""
        ...


TRANSLATORS: Registry[Translator] = Registry("translator")


@lru_cache(maxsize=1)
def _apertium_modes() -> tuple[str, ...]:
    exe = shutil.which("apertium")
    if not exe:
        return ()
    try:
        res = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(m.strip() for m in res.stdout.split() if m.strip())


class ApertiumTranslator:
    name = "apertium"
    SEPARATOR = "\n\n"

    def pairs(self) -> list[tuple[str, str]]:
        back = {v: k for k, v in _APERTIUM_CODES.items()}
        out = []
        for mode in _apertium_modes():
            parts = mode.split("-")
            if len(parts) == 2 and parts[0] in back and parts[1] in back:
                out.append((back[parts[0]], back[parts[1]]))
        return out

    def _run(self, text: str, mode: str) -> str:
        try:
            res = subprocess.run(["apertium", "-u", mode], input=text, capture_output=True, text=True, timeout=600)
        except FileNotFoundError:
            raise MissingDependencyError(_INSTALL) from None
        if res.returncode != 0:
            raise RuntimeError(f"apertium {mode} failed: {res.stderr.strip()[-300:]}")
        return res.stdout

    def translate(self, lines: Sequence[str], source: str, target: str) -> list[str]:
        if (source, target) not in self.pairs():
            raise InputError(unknown_pair_message(source, target, self))
        mode = f"{_APERTIUM_CODES[source]}-{_APERTIUM_CODES[target]}"
        clean = [" ".join(str(t).split()) for t in lines]
        if not clean:
            return []
        # one process for all lines (apertium takes ~0.6 s to start); blank lines keep them apart
        out = [p.strip() for p in self._run(self.SEPARATOR.join(clean), mode).strip("\n").split(self.SEPARATOR)]
        if len(out) != len(clean):
            log.info("apertium merged or split lines; translating them one by one")
            out = [self._run(t, mode).strip() for t in clean]
        return [" ".join(t.split()) for t in out]


_INSTALL = ("Apertium is not installed; install it with `sudo apt-get install -y apertium apertium-eng-spa` "
            "(or run `make setup`)")
TRANSLATORS.register("apertium", "Apertium rule-based translation (Debian packages; en<->es with apertium-eng-spa)",
                     available=lambda: bool(_apertium_modes()))(ApertiumTranslator)


def unknown_pair_message(source: str, target: str, translator=None) -> str:
    engines = [translator] if translator is not None else [TRANSLATORS.create(n) for n in TRANSLATORS.names()]
    pairs = sorted({f"{a}->{b}" for t in engines for a, b in t.pairs()})
    have = ", ".join(pairs) if pairs else "none (install apertium: `sudo apt-get install -y apertium apertium-eng-spa`)"
    return (f"cannot translate {language_name(source)} ({source}) to {language_name(target)} ({target}): no "
            f"installed translator has that pair; pairs available: {have}. Give subtitles already in "
            f"{language_name(target)} instead (--subs without --to)")


def find_translator(source: str, target: str, name: str | None = None) -> Translator:
    """The named translator, or the first registered one that has the pair; InputError when none has it."""
    if name:
        t = TRANSLATORS.create(name)
        if (source, target) not in t.pairs():
            raise InputError(unknown_pair_message(source, target, t))
        return t
    for n in TRANSLATORS.names():
        t = TRANSLATORS.create(n)
        if (source, target) in t.pairs():
            return t
    raise InputError(unknown_pair_message(source, target))
