"""Exceptions raised by the studio.

Every error a user can cause by giving bad input is an :class:`InputError` whose message says what was
wrong and how to fix it. The CLI prints the message and exits non-zero; the app shows it in the page.
"""


class StudioError(Exception):
    """Base class of every error the studio raises on purpose."""


class InputError(StudioError, ValueError):
    """A file, text or option given by the user cannot be used; the message says how to fix it."""


class MissingCheckpointError(StudioError, FileNotFoundError):
    """A model's weights are not where they must be; the message says where to put them."""


class MissingDependencyError(StudioError, ImportError):
    """An optional package or system tool is not installed; the message says how to install it."""


class CancelledError(StudioError):
    """The user cancelled a long job through its progress handle."""
