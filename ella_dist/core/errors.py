"""Exceptions of the core library.

They subclass the built-in exception a caller would expect (``KeyError`` for an
unknown id, ``ValueError`` for unusable state) so that plain ``except`` clauses keep
working, and each takes a single message argument so that Ray can re-raise them.
"""

from __future__ import annotations


class UnknownTaskError(KeyError):
    """A task id that the model has never been trained on."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NotFittedError(ValueError, AttributeError):
    """The model has not learned anything yet (mirrors scikit-learn's class)."""


class ModelFormatError(ValueError):
    """A saved model file that this version cannot read."""
