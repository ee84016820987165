"""The one error tree of rewts.

Every error a user can cause or fix derives from :class:`RewtsError` and carries a message that
says what to fix. The CLI prints such errors as one line (a traceback only with ``--debug``);
anything else is a bug and is shown with its traceback. Errors of the libraries underneath
(pydantic, pandas, httpx, the provider SDKs) are translated into this tree at the boundary,
so callers never need to catch a third-party exception.
"""

from __future__ import annotations


class RewtsError(Exception):
    """Base class of every error rewts raises on purpose."""

    #: process exit code the CLI uses for this kind of error
    exit_code: int = 1


class ConfigError(RewtsError):
    """A configuration file, key or command-line override is invalid."""

    exit_code = 2


class DataError(RewtsError):
    """Market or news data is missing or malformed (the message names file and row)."""

    exit_code = 3


class LLMError(RewtsError):
    """A language-model provider failed in a way the user must act on."""

    exit_code = 4


class AuthenticationError(LLMError):
    """The API key is missing or rejected; the message names the variable to set."""


class QuotaExhaustedError(LLMError):
    """The provider's daily quota is used up; the run stopped cleanly and can be resumed."""

    exit_code = 5


class TrainingError(RewtsError):
    """Training could not run (for example: too little data for a chunk)."""

    exit_code = 6


class BacktestError(RewtsError):
    """The backtest could not run (for example: no trained agents for a ticker)."""

    exit_code = 7


class StorageError(RewtsError):
    """A file cannot be written (disk full, a lock held too long); what is committed is kept."""

    exit_code = 8


class SignalError(RewtsError):
    """A signal that would not be honest: agents trained on another config or data version,
    or a day inside the training range (an in-sample signal)."""

    exit_code = 9
