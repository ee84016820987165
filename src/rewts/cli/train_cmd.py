"""``rewts train``: Train one Double DQN agent per ticker and chunk, in parallel, checkpointed."""

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


@app.command("train")
def train_command(
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
    """Train one Double DQN agent per ticker and chunk, in parallel, checkpointed."""
    args = common(config, sets, profile, debug, no_progress)
    with user_errors(args.debug):
        args.load(
            data_flags(tickers, data_dir, source)
            | llm_flags(provider, model, base_url, workers, rps, rpm, cache, on_failure, no_news)
        )
        raise NotYetImplementedError("`rewts train` is not built yet")
