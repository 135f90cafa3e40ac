"""The ``studio`` logger. The library logs here and prints nothing; the CLI attaches a handler."""
import logging

logger = logging.getLogger("studio")
logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    return logger.getChild(name)


class _NativeStderr:
    """Silences what native libraries (mediapipe's C++/absl and TFLite) write straight to file descriptor 2,
    which no Python logging setting reaches. Reference-counted, so overlapping uses from several threads keep
    it silenced until the last one ends. Nothing is silenced when the ``studio`` logger shows INFO (``-v``)."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._depth = 0
        self._saved_fd: int | None = None

    def __enter__(self):
        with self._lock:
            self._depth += 1
            if self._depth == 1 and not logger.isEnabledFor(logging.INFO):
                import os

                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    self._saved_fd = os.dup(2)
                    os.dup2(devnull, 2)
                    os.close(devnull)
                except OSError:  # no fd 2 (some embedded interpreters): nothing to silence
                    self._saved_fd = None
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._saved_fd is not None:
                import os

                os.dup2(self._saved_fd, 2)
                os.close(self._saved_fd)
                self._saved_fd = None
        return False


quiet_native_stderr = _NativeStderr()
