"""``SimServer``: the simulator on loopback, on its own event loop in a background thread.

A thread (not a subprocess) so tests and benchmarks can start it in one line from sync or
async code, read its counters directly and change its behaviour mid-run; its loop is separate
from the caller's, so a client's event loop never shares work with the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import threading
from typing import Any

from aiohttp import web

from rewts.sim.app import SimState, build_app
from rewts.sim.config import SimConfig

_START_TIMEOUT_S = 15.0


def _raise_fd_limit() -> None:
    """Thousands of concurrent connections need file descriptors on both ends (best effort)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
        if soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class SimServer:
    """An LLM-API simulator speaking OpenAI's and Gemini's wire formats on one port.

    ``with SimServer(SimConfig(rpm_limit=50)) as sim:`` then point a client at
    ``sim.openai_base_url`` or ``sim.gemini_base_url``. ``stop()`` makes it vanish mid-run
    (listening socket and open connections closed); ``start()`` brings it back on the same port
    with its counters, limits and batch jobs intact.
    """

    def __init__(
        self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._state = SimState(config or SimConfig())
        self.host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("the simulator has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """What ``openai.AsyncOpenAI(base_url=...)`` wants."""
        return f"{self.url}/v1"

    @property
    def gemini_base_url(self) -> str:
        """What ``google.genai`` ``HttpOptions(base_url=...)`` wants (it adds /v1beta itself)."""
        return self.url

    @property
    def config(self) -> SimConfig:
        return self._state.config

    @property
    def running(self) -> bool:
        return self._runner is not None

    # -- life cycle --------------------------------------------------------------------------

    def _call(self, coro: Any, timeout: float = _START_TIMEOUT_S) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> SimServer:
        """Start serving (again); after ``stop()`` it binds the same port."""
        fresh = self._thread is None
        if fresh:
            _raise_fd_limit()
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                loop.close()

            self._thread = threading.Thread(target=run, name="rewts-sim", daemon=True)
            self._loop = loop
            self._thread.start()
            ready.wait(_START_TIMEOUT_S)
        if self._runner is None:
            try:
                self._call(self._start_site())
            except BaseException:
                if fresh:  # e.g. the port is taken: leave no thread behind
                    self.close()
                raise
        return self

    async def _start_site(self) -> None:
        runner = web.AppRunner(
            build_app(self._state),
            access_log=None,  # per-request logging would dominate the server's overhead
            handler_cancellation=True,  # a client that gives up frees its handler at once
            shutdown_timeout=0.1,  # stop() is a crash, not a graceful drain
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, backlog=4096, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        server = site._server  # aiohttp exposes the bound port only here
        if server is not None and getattr(server, "sockets", None):
            self._port = server.sockets[0].getsockname()[1]
        self._runner = runner

    def stop(self) -> None:
        """Stop serving: close the listener and every open connection (in-flight ones fail)."""
        if self._runner is not None and self._loop is not None:
            runner, self._runner = self._runner, None
            self._state.stopping = True
            try:
                self._call(runner.cleanup())
            finally:
                self._state.stopping = False

    def close(self) -> None:
        """Stop and end the background thread."""
        self.stop()
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_START_TIMEOUT_S)
        self._loop = None
        self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observing and steering --------------------------------------------------------------

    def stats(self, *, log: bool = True) -> dict[str, Any]:
        """Counters and the per-request log, as ``GET /stats`` returns them."""
        return self._state.stats.snapshot(log=log)

    def reset_stats(self) -> None:
        self._state.stats.reset()

    def reset_day(self) -> None:
        """Start a new "day" for ``rpd_limit`` (the daily quota counter goes back to 0)."""
        self._state.reset_day()

    def update(self, **changes: Any) -> SimConfig:
        """Change settings at run time (e.g. ``update(error_rate=1.0)``); returns the new config."""
        return self._state.update(**changes)

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"SimServer({where}, running={self.running})"
