"""Progress reporting and cancellation for long jobs.

Library code never prints: it reports through a :class:`Progress` handle that the caller injects (tqdm in
the CLI, ``gr.Progress`` in the app). ``Progress.none()`` is the silent default.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import CancelledError

# callback(stage, done, total): total is None when unknown.
ProgressCallback = Callable[[str, int, Optional[int]], None]


@dataclass
class Progress:
    """A progress sink with a cancel flag shared by every stage of one job."""

    callback: Optional[ProgressCallback] = None
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def none(cls) -> "Progress":
        return cls()

    @classmethod
    def of(cls, value: "Progress | ProgressCallback | None") -> "Progress":
        """Accept a Progress, a bare callback or None (silent)."""
        if isinstance(value, Progress):
            return value
        return cls(callback=value)

    def update(self, stage: str, done: int, total: Optional[int] = None) -> None:
        """Report that ``done`` of ``total`` units of ``stage`` are finished; raises if cancelled."""
        self.check()
        if self.callback is not None:
            self.callback(stage, done, total)

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check(self) -> None:
        """Raise :class:`CancelledError` when the job was cancelled; call it between units of work."""
        if self.cancel_event.is_set():
            raise CancelledError("the job was cancelled")
