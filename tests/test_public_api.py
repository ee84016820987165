"""The public API of the ``rewts`` package, pinned: a name added, removed or renamed here is a
change users see, so it must be made on purpose (update this test and the docs with it)."""

from __future__ import annotations

import inspect

import rewts
from rewts import errors


def test_top_level_names():
    assert sorted(rewts.__all__) == [
        "AuthenticationError",
        "Config",
        "ConfigError",
        "DataError",
        "LLMError",
        "QuotaExhaustedError",
        "RewtsError",
        "__version__",
        "load_config",
    ]
    for name in rewts.__all__:
        assert hasattr(rewts, name), name


def test_the_public_names_are_what_they_say():
    assert isinstance(rewts.__version__, str) and rewts.__version__
    assert inspect.isclass(rewts.Config)
    assert callable(rewts.load_config)
    for name in ("AuthenticationError", "ConfigError", "DataError", "LLMError"):
        cls = getattr(rewts, name)
        assert issubclass(cls, rewts.RewtsError) and cls is getattr(errors, name)
    assert issubclass(rewts.QuotaExhaustedError, rewts.LLMError)


def test_error_exit_codes():
    """Scripts branch on the exit code: pinned per public error class."""
    assert {
        name: getattr(rewts, name).exit_code
        for name in rewts.__all__
        if inspect.isclass(getattr(rewts, name))
        and issubclass(getattr(rewts, name), rewts.RewtsError)
    } == {
        "RewtsError": 1,
        "ConfigError": 2,
        "DataError": 3,
        "LLMError": 4,
        "AuthenticationError": 4,
        "QuotaExhaustedError": 5,
    }
