"""``rewts strategies``: Generate an LLM strategy for every ticker and period, in parallel, cached."""

from __future__ import annotations

from rewts.cli.app import app
from rewts.cli.common import (
    BaseUrlOpt,
    CacheOpt,
    ConfigOpt,
    DataDirOpt,
    DebugOpt,
    ModelOpt,
    NoNewsOpt,
    NoProgressOpt,
    OnFailureOpt,
    ProfileOpt,
    ProviderOpt,
    RpmOpt,
    RpsOpt,
    SetOpt,
    SourceOpt,
    TickersOpt,
    WorkersOpt,
    common,
    data_flags,
    llm_flags,
    user_errors,
)
from rewts.errors import NotYetImplementedError


@app.command("strategies")
def strategies_command(
    tickers: TickersOpt = None,
    data_dir: DataDirOpt = None,
    source: SourceOpt = None,
    provider: ProviderOpt = None,
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    workers: WorkersOpt = None,
    rps: RpsOpt = None,
    rpm: RpmOpt = None,
    cache: CacheOpt = None,
    on_failure: OnFailureOpt = None,
    no_news: NoNewsOpt = False,
    config: ConfigOpt = None,
    sets: SetOpt = None,
    profile: ProfileOpt = None,
    debug: DebugOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Generate an LLM strategy for every ticker and period, in parallel, cached."""
    args = common(config, sets, profile, debug, no_progress)
    with user_errors(args.debug):
        args.load(
            data_flags(tickers, data_dir, source)
            | llm_flags(provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news)
        )
        raise NotYetImplementedError("`rewts strategies` is not built yet")
