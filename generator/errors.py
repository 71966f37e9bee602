"""Exception types for errors caused by the user's input.

Every error a user can cause (a bad config value, a missing file, a model that
does not fit the data) raises one of these with a message that names the file,
the key or the value, and says what is accepted. The CLI prints the message and
exits with status 2 instead of showing a traceback.
"""
from __future__ import annotations

__all__ = ["GeneratorError", "ConfigError", "DataError", "ModelError", "ExportError"]


class GeneratorError(Exception):
    """Base class of every error the generator reports to the user."""


class ConfigError(GeneratorError):
    """The configuration file is missing, unreadable, or holds a bad key or value."""


class DataError(GeneratorError):
    """A dataset file, column or value is missing or not in an accepted form."""


class ModelError(GeneratorError):
    """A model file cannot be loaded or does not fit the data."""


class ExportError(GeneratorError):
    """A page, figure, deck or PDF could not be written."""
