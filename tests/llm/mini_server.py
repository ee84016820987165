"""A tiny scripted OpenAI-compatible server on loopback, for adapter error-mapping tests.

(The full simulator with latency distributions and server-side limits is ``rewts.sim``; this
one answers exactly what a test scripts, so each SDK error path is hit deterministically.)
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

ANSWER = {
    "direction": 0,
    "confidence": 2.0,
    "explanation": "scripted",
    "key_features": [{"feature": "rsi_14", "impact": "negative", "weight": 0.7}],
}


def completion(content: str, finish: str = "stop", logprobs: Any = None) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160},
    }


class MiniServer:
    """``handler(request_json, headers) -> (status, body, headers)``; records every request."""

    def __init__(self, handler: Callable[[dict, dict], tuple[int, Any, dict]]) -> None:
        self.handler = handler
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        status, payload, headers = self.handler(body, dict(request.headers))
        if isinstance(payload, str):
            return web.Response(
                status=status, text=payload, headers=headers, content_type="application/json"
            )
        return web.json_response(payload, status=status, headers=headers)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def __enter__(self) -> MiniServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def ok_handler(body: dict, headers: dict) -> tuple[int, Any, dict]:
    return 200, completion(json.dumps(ANSWER)), {}
