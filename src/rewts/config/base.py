"""What every config section shares: the base model and the validated field types."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _names_a_file(symbol: str) -> str:
    """A symbol becomes a file and folder name (``AAPL.csv``, ``checkpoints/AAPL/``): one made
    of dots only (``..``) would point outside its folder."""
    if not any(ch.isalnum() for ch in symbol):
        raise ValueError(
            f"{symbol!r} is not a symbol: it needs a letter or digit (it names files and folders)"
        )
    return symbol


#: a positive, finite number: ``inf`` or ``nan`` where a rate, time or size is expected would
#: divide into zero waits or never-ending ones deep inside a run
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def per_hour(per_seconds: float) -> AfterValidator:
    """A rate limit must let at least one request through per hour (``--rpm 1e-9`` would
    make the first request wait for centuries, with no output)."""

    def check(rate: float) -> float:
        if rate * 3600 / per_seconds < 1:
            raise ValueError(
                f"a rate this low sends less than one request per hour; use at least "
                f"{per_seconds / 3600:.4g}"
            )
        return rate

    return AfterValidator(check)


#: dates a market series can have; pandas' timestamps end in 2262, and a year 1 or 9999
#: failed deep inside the data stage
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2200, 12, 31)


def _market_date(day: dt.date) -> dt.date:
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"must be between {FIRST_DATE} and {LAST_DATE}")
    return day


MarketDate = Annotated[dt.date, AfterValidator(_market_date)]


#: letters, digits and . - ^ (``BRK.B``, ``^GSPC``); never a path component like ``..``
Ticker = Annotated[
    str,
    Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9.\-\^]+$"),
    AfterValidator(_names_a_file),
]
#: a market symbol may also hold ``=`` and ``_`` (Yahoo's ``CL=F``)
MarketSymbol = Annotated[
    str,
    Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.\-\^=_]+$"),
    AfterValidator(_names_a_file),
]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)
