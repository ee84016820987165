"""``rewts sim``: a local LLM-API simulator for tests, benchmarks and demos.

Serves both wire formats (OpenAI chat completions and Gemini generateContent/batch) on one
port in the foreground until Ctrl-C. Loopback only unless ``--allow-remote``: the simulator
has no real authentication and answers anyone.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rewts.cli.app import app
from rewts.cli.common import err_console, split_list
from rewts.cli.options import CONFIG, CommandArgs, optional, options
from rewts.errors import ConfigError

if TYPE_CHECKING:  # the simulator (aiohttp) is imported only when the command runs
    from rewts.sim import SimServer


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def _rate(help: str) -> Any:
    """A fault-injection flag: the share of requests (0 to 1) that meet the fault (named, like
    every value flag here, after its parameter: ``error_rate`` -> ``--error-rate``; a bool
    flag names itself, or typer would add a ``--no-`` twin)."""
    return typer.Option(help=help)


@app.command("sim")
@options(CONFIG)
def sim_command(
    args: CommandArgs,
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback only unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 = any free port).")] = 8000,
    latency: Annotated[float, typer.Option(help="Mean answer latency in seconds.")] = 0.5,
    latency_dist: Annotated[str, typer.Option(help="fixed or lognormal.")] = "fixed",
    latency_sigma: Annotated[float, typer.Option(help="Sigma of the lognormal latency.")] = 0.5,
    rpm: Annotated[int | None, optional("--rpm", help="Requests per minute before 429.")] = None,
    tpm: Annotated[int | None, optional("--tpm", help="Tokens per minute before 429.")] = None,
    rpd: Annotated[
        int | None, optional("--rpd", help="Requests per day before the quota 429.")
    ] = None,
    window: Annotated[float, typer.Option(help="Length of the rpm/tpm window in seconds.")] = 60.0,
    no_retry_after: Annotated[
        bool, typer.Option("--no-retry-after", help="429s without Retry-After / RetryInfo.")
    ] = False,
    error_rate: Annotated[float, _rate("Share of injected 500/502/503.")] = 0.0,
    malformed_rate: Annotated[float, _rate("Share of 200s with invalid JSON.")] = 0.0,
    truncated_rate: Annotated[float, _rate("Share of 200s cut off (finish length).")] = 0.0,
    garbage_rate: Annotated[float, _rate("Share of 200s whose body is cut off (not JSON).")] = 0.0,
    hang_rate: Annotated[float, _rate("Share of requests never answered.")] = 0.0,
    drop_rate: Annotated[float, _rate("Share of connections closed without an answer.")] = 0.0,
    api_key_env: Annotated[
        str | None,
        optional("--api-key-env", help="Accept only the key in this environment variable."),
    ] = None,
    models: Annotated[
        str | None,
        optional("--models", help="Comma-separated models to accept (others 404)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for answers, faults and latency.")] = 0,
    batch_delay: Annotated[
        float, typer.Option(help="Seconds until a Gemini batch job succeeds.")
    ] = 10.0,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No periodic request counts.")] = False,
) -> None:
    """Serve a simulated LLM API (OpenAI chat completions and Gemini) until Ctrl-C."""
    from rewts.sim import SimConfig, SimServer

    if not allow_remote and not is_loopback(host):
        raise ConfigError(
            f"--host {host} is not a loopback address; the simulator answers anyone, so it "
            "listens on 127.0.0.1 unless you pass --allow-remote"
        )
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be between 0 and 65535 (0 = any free port)")
    key = None
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is not set")
    sim_cfg = SimConfig(
        latency_s=latency,
        latency_dist=latency_dist,  # type: ignore[arg-type]  # validated by SimConfig
        latency_sigma=latency_sigma,
        rpm_limit=rpm,
        tpm_limit=tpm,
        rpd_limit=rpd,
        window_s=window,
        retry_after=not no_retry_after,
        error_rate=error_rate,
        malformed_rate=malformed_rate,
        truncated_rate=truncated_rate,
        garbage_rate=garbage_rate,
        hang_rate=hang_rate,
        drop_rate=drop_rate,
        api_key=key,
        models=tuple(split_list(models) or ()) or None,
        seed=seed,
        batch_delay_s=batch_delay,
    )
    sim = SimServer(sim_cfg, host=host, port=port)
    try:
        sim.start()
    except (OSError, OverflowError) as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}; "
            "pick another --port"
        ) from None
    try:
        _announce(sim)
        _serve(sim, quiet)
    except KeyboardInterrupt:
        err_console.print("stopped")
    finally:
        sim.close()


def _announce(sim: SimServer) -> None:
    typer.echo(f"rewts sim listening on {sim.url}")
    typer.echo(f"  OpenAI format: {sim.openai_base_url}  (POST /chat/completions)")
    typer.echo(
        f"  Gemini format: {sim.gemini_base_url}  (POST /v1beta/models/MODEL:generateContent)"
    )
    typer.echo(f"  stats: GET {sim.url}/stats   control: POST {sim.url}/control")
    keys = "the key in --api-key-env" if sim.config.api_key else "any key"
    typer.echo(f"Point rewts at it ({keys} is accepted):")
    typer.echo(
        f"  OPENAI_API_KEY=sim rewts strategies --provider openai --base-url {sim.openai_base_url} ..."
    )
    typer.echo(
        f"  GEMINI_API_KEY=sim rewts strategies --provider gemini --base-url {sim.gemini_base_url} ..."
    )
    typer.echo(f"  (or --provider local --base-url {sim.openai_base_url}: no key needed)")
    typer.echo("Ctrl-C to stop.")


def _serve(sim: SimServer, quiet: bool) -> None:
    """Wait for Ctrl-C, printing request counts every few seconds when they change."""
    last = -1
    while True:
        time.sleep(5.0)
        if quiet:
            continue
        s = sim.stats(log=False)
        if s["requests"] != last:
            last = s["requests"]
            err_console.print(
                f"requests {s['requests']} | by status {s['by_status']} | faults {s['faults']} | "
                f"in flight {s['in_flight']} (max {s['max_in_flight']}) | tokens in/out "
                f"{s['tokens_in']}/{s['tokens_out']}",
                highlight=False,
            )
