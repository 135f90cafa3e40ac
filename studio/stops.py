"""Every kind of stop behaves like Ctrl-C: SIGTERM (``docker stop``, ``timeout``, systemd) and SIGHUP (a closed
terminal) raise :class:`Stopped` in the main thread, so the same ``finally`` blocks and context managers that
handle Ctrl-C end the ffmpeg children and remove partial files. Installed by the CLI only, never on import."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Optional

SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM or SIGHUP."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP)."""
    return 128 + (exc.signum if isinstance(exc, Stopped) else signal.SIGINT)


@contextmanager
def stops_raise(on_signal: Optional[Callable[[int], None]] = None):
    """Within the block, SIGTERM and SIGHUP raise :class:`Stopped` (or call ``on_signal(signum)`` instead).
    Outside the main thread it changes nothing (Python only delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        if on_signal is not None:
            on_signal(signum)
        else:
            raise Stopped(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
