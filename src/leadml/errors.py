"""The errors leadml raises on purpose, each with the exit code the CLI gives it.

Every message says what is wrong and how to fix it; :mod:`leadml.cli` is the one place they
become exit codes (``docs/exit-codes`` in the README):

- :class:`ConfigError`: 2, a config or rules file that cannot be read or does not validate;
- :class:`LeadDataError`: 3, lead data that does not match the config or the model;
- :class:`TooManyRejects`: 4, more rejected rows than ``--max-reject-rate`` allows;
- :class:`ModelUnavailableError`: 5, and :class:`RegistryUnavailableError`, the model
  cannot be found or loaded, or the registry answered with an error;
- :class:`OutputError`: 6, an output could not be written;
- :class:`TrackingServerDownError`: 8, the tracking server does not answer.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate."""


class LeadDataError(ValueError):
    """Lead data that does not match what the config or the model expects."""


class TooManyRejects(LeadDataError):  # noqa: N818 (a condition, named as users say it)
    """More rows were rejected than ``max_reject_rate`` allows."""


class OutputError(RuntimeError):
    """An output could not be written (a read-only folder, a full disk, ...)."""


class ModelUnavailableError(RuntimeError):
    """The requested model cannot be found or loaded."""


class RegistryUnavailableError(ModelUnavailableError):
    """The tracking store or registry answered with an error other than "not found"."""


class TrackingServerDownError(RuntimeError):
    """The tracking server named by the URI does not answer (exit code 8)."""
