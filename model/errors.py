"""Exceptions raised for problems the user can fix.

Every subclass of :class:`StanceError` carries a message that names what was wrong
(file, row, column, expected values) and how to fix it. The CLI turns these into
one line on stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class StanceError(Exception):
    """Base class for user-fixable errors (bad input, bad config, bad model)."""


class LabelMappingError(StanceError, ValueError):
    """A checkpoint's or data set's labels cannot be mapped onto the canonical labels."""


class InputDataError(StanceError, ValueError):
    """An input file is missing, unreadable, or has wrong columns or values."""


class ModelLoadError(StanceError, OSError):
    """A model directory is missing files, holds unsafe weights, or is corrupt."""


class ConfigError(StanceError, ValueError):
    """A training recipe has unknown keys, wrong types, or bad values."""
