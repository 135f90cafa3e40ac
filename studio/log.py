"""The ``studio`` logger. The library logs here and prints nothing; the CLI attaches a handler."""
import logging

logger = logging.getLogger("studio")
logger.addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    return logger.getChild(name)
