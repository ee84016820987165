"""The real ``openai`` SDK (AsyncOpenAI, retries off) against the simulator over loopback."""

from __future__ import annotations

import asyncio
import json
import math
import time

import httpx2
import openai
import pytest

from rewts.llm.schemas import Strategy
from rewts.sim import SimConfig, SimServer

from .helpers import chat_kwargs, json_schema_format, openai_client


def run(coro):
    return asyncio.run(coro)


def test_schema_answer_logprobs_usage_and_determinism() -> None:
    with SimServer(SimConfig(latency_s=0.0)) as sim:

        async def go():
            client = openai_client(sim)
            kwargs = chat_kwargs(
                response_format=json_schema_format(), logprobs=True, top_logprobs=3
            )
            first = await client.chat.completions.create(**kwargs)
            again = await client.chat.completions.create(**kwargs)
            other = await client.chat.completions.create(
                **chat_kwargs("Decide for MSFT.", response_format=json_schema_format())
            )
            await client.close()
            return first, again, other

        first, again, other = run(go())
    choice = first.choices[0]
    assert choice.finish_reason == "stop"
    Strategy.model_validate_json(choice.message.content)  # valid against the requested schema
    # log-probabilities: one per token, the tokens spell the answer, top-k is a sub-distribution
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert first.usage.completion_tokens == len(tokens)
    assert first.usage.prompt_tokens == math.ceil(
        len("You are a strategist.\nDecide for AAPL.") / 4
    )
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    for t in tokens:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token
        assert sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1 + 1e-9
        assert bytes(t.bytes).decode() == t.token
    # same request -> same answer; another prompt -> another answer
    assert again.choices[0].message.content == choice.message.content
    assert [t.logprob for t in again.choices[0].logprobs.content] == [t.logprob for t in tokens]
    assert other.choices[0].message.content != choice.message.content
    assert other.choices[0].logprobs is None


def test_without_schema_short_text_and_max_tokens_cut() -> None:
    with SimServer(SimConfig(latency_s=0.0)) as sim:

        async def go():
            client = openai_client(sim)
            plain = await client.chat.completions.create(**chat_kwargs("Say something."))
            cut = await client.chat.completions.create(
                **chat_kwargs(response_format=json_schema_format(), max_tokens=5)
            )
            await client.close()
            return plain, cut

        plain, cut = run(go())
    text = plain.choices[0].message.content
    assert text and not text.startswith("{")
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 5
    with pytest.raises(ValueError):
        json.loads(cut.choices[0].message.content)


def test_rpm_limit_answers_429_with_retry_after_headers() -> None:
    with SimServer(SimConfig(latency_s=0.0, rpm_limit=2, window_s=30.0)) as sim:

        async def go():
            client = openai_client(sim)
            ok = [
                await client.chat.completions.with_raw_response.create(**chat_kwargs(str(i)))
                for i in range(2)
            ]
            with pytest.raises(openai.RateLimitError) as info:
                await client.chat.completions.create(**chat_kwargs("third"))
            await client.close()
            return ok, info.value

        ok, err = run(go())
        stats = sim.stats()
    assert ok[0].headers["x-ratelimit-limit-requests"] == "2"
    assert ok[1].headers["x-ratelimit-remaining-requests"] == "0"
    assert err.status_code == 429 and err.code == "rate_limit_exceeded" and err.type == "requests"
    headers = err.response.headers
    assert 25 <= float(headers["retry-after-ms"]) / 1000 <= 30
    assert int(headers["retry-after"]) == math.ceil(float(headers["retry-after-ms"]) / 1000)
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert stats["http_429"] == 1 and stats["by_status"]["200"] == 2


def test_429_without_retry_after_tpm_and_daily_quota() -> None:
    cfg = SimConfig(latency_s=0.0, rpm_limit=1, window_s=30.0, retry_after=False)
    with SimServer(cfg) as sim:

        async def go():
            client = openai_client(sim)
            await client.chat.completions.create(**chat_kwargs())
            with pytest.raises(openai.RateLimitError) as no_header:
                await client.chat.completions.create(**chat_kwargs())
            sim.update(rpm_limit=None, tpm_limit=10, retry_after=True)
            with pytest.raises(openai.RateLimitError) as tokens:
                await client.chat.completions.create(
                    **chat_kwargs(response_format=json_schema_format())
                )
            sim.update(tpm_limit=None, rpd_limit=1)
            with pytest.raises(openai.RateLimitError) as daily:
                await client.chat.completions.create(**chat_kwargs())
            sim.reset_day()
            sim.update(rpd_limit=1)
            after_reset = await client.chat.completions.create(**chat_kwargs())
            await client.close()
            return no_header.value, tokens.value, daily.value, after_reset

        no_header, tokens, daily, after_reset = run(go())
    assert "retry-after" not in no_header.response.headers
    assert "retry-after-ms" not in no_header.response.headers
    assert tokens.type == "tokens" and "tokens per min" in tokens.message
    assert "retry-after-ms" in tokens.response.headers
    assert daily.code == "insufficient_quota" and "per day" in daily.message
    assert "retry-after" not in daily.response.headers
    assert after_reset.choices[0].message.content


def test_wrong_key_401_and_unknown_model_404() -> None:
    cfg = SimConfig(latency_s=0.0, api_key="sk-right-key-123456", models=("gpt-4o-mini",))
    with SimServer(cfg) as sim:

        async def go():
            bad = openai_client(sim, key="sk-wrong-key-987654")
            with pytest.raises(openai.AuthenticationError) as auth:
                await bad.chat.completions.create(**chat_kwargs())
            good = openai_client(sim, key="sk-right-key-123456")
            ok = await good.chat.completions.create(**chat_kwargs())
            with pytest.raises(openai.NotFoundError) as missing:
                await good.chat.completions.create(**{**chat_kwargs(), "model": "gpt-nope"})
            await bad.close()
            await good.close()
            return auth.value, ok, missing.value

        auth, ok, missing = run(go())
    assert auth.status_code == 401 and auth.code == "invalid_api_key"
    assert "sk-wrong-key-987654" not in str(auth.body)  # echoed masked, like the real API
    assert ok.choices[0].message.content
    assert missing.status_code == 404 and missing.code == "model_not_found"


def test_injected_5xx_rate_is_about_as_configured_and_seeded() -> None:
    def count(seed: int) -> list[int]:
        with SimServer(SimConfig(latency_s=0.0, error_rate=0.3, seed=seed)) as sim:

            async def go():
                client = openai_client(sim)
                statuses = []
                for i in range(150):
                    try:
                        await client.chat.completions.create(**chat_kwargs(str(i)))
                        statuses.append(200)
                    except openai.InternalServerError as exc:
                        statuses.append(exc.status_code)
                await client.close()
                return statuses

            return run(go())

    first = count(7)
    share = sum(s >= 500 for s in first) / len(first)
    assert 0.2 < share < 0.4
    assert {s for s in first if s >= 500} == {500, 502, 503}
    assert count(7) == first  # same seed, same arrival order -> same faults


def test_malformed_and_truncated_answers() -> None:
    with SimServer(SimConfig(latency_s=0.0, malformed_rate=1.0)) as sim:

        async def go(kind):
            client = openai_client(sim)
            out = await client.chat.completions.create(
                **chat_kwargs(response_format=json_schema_format())
            )
            await client.close()
            return out

        bad = run(go("malformed"))
        sim.update(malformed_rate=0.0, truncated_rate=1.0)
        cut = run(go("truncated"))
        faults = sim.stats()["faults"]
    assert bad.choices[0].finish_reason == "stop"
    with pytest.raises(ValueError):
        json.loads(bad.choices[0].message.content)
    assert cut.choices[0].finish_reason == "length"
    with pytest.raises(ValueError):
        json.loads(cut.choices[0].message.content)
    assert faults == {"malformed": 1, "truncated": 1}


def test_hang_times_out_and_drop_is_a_connection_error() -> None:
    with SimServer(SimConfig(latency_s=0.0, hang_rate=1.0)) as sim:

        async def hang():
            client = openai_client(sim, timeout=0.3)
            t0 = time.monotonic()
            with pytest.raises(openai.APITimeoutError):
                await client.chat.completions.create(**chat_kwargs())
            await client.close()
            return time.monotonic() - t0

        waited = run(hang())
        assert 0.25 < waited < 3.0
        deadline = time.monotonic() + 2
        while sim.stats(log=False)["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sim.stats(log=False)["in_flight"] == 0  # the hung handler was freed

        sim.update(hang_rate=0.0, drop_rate=1.0)

        async def drop():
            client = openai_client(sim)
            with pytest.raises(openai.APIConnectionError) as info:
                await client.chat.completions.create(**chat_kwargs())
            await client.close()
            return info.value

        err = run(drop())
        stats = sim.stats()
    assert not isinstance(err, openai.APITimeoutError)
    assert isinstance(err.__cause__, httpx2.RemoteProtocolError)
    assert stats["faults"] == {"hang": 1, "drop": 1}
    assert [e["status"] for e in stats["log"]] == [None, None]


def test_stop_and_start_on_the_same_port() -> None:
    with SimServer(SimConfig(latency_s=0.0)) as sim:
        port = sim.port

        async def go():
            client = openai_client(sim, timeout=2.0)
            before = await client.chat.completions.create(**chat_kwargs())
            sim.stop()
            with pytest.raises(openai.APIConnectionError):
                await client.chat.completions.create(**chat_kwargs())
            sim.start()
            after = await client.chat.completions.create(**chat_kwargs())
            await client.close()
            return before, after

        before, after = run(go())
        assert sim.port == port
    assert before.choices[0].message.content == after.choices[0].message.content


def test_in_flight_requests_fail_when_the_server_dies() -> None:
    with SimServer(SimConfig(latency_s=5.0)) as sim:

        async def go():
            client = openai_client(sim)
            calls = [
                asyncio.ensure_future(client.chat.completions.create(**chat_kwargs(str(i))))
                for i in range(5)
            ]
            while sim.stats(log=False)["in_flight"] < 5:
                await asyncio.sleep(0.01)
            t0 = time.monotonic()
            await asyncio.to_thread(sim.stop)
            results = await asyncio.gather(*calls, return_exceptions=True)
            await client.close()
            return results, time.monotonic() - t0

        results, took = run(go())
        faults = sim.stats(log=False)["faults"]
    assert took < 2.0
    assert all(isinstance(r, openai.APIConnectionError) for r in results)
    assert faults == {"server_stopped": 5}


def test_garbage_body_is_a_decode_error_in_both_sdks() -> None:
    from .helpers import gemini_client

    with SimServer(SimConfig(latency_s=0.0, garbage_rate=1.0)) as sim:

        async def go():
            client = openai_client(sim)
            with pytest.raises(json.JSONDecodeError):
                await client.chat.completions.create(**chat_kwargs())
            await client.close()
            with pytest.raises(json.JSONDecodeError):
                await gemini_client(sim).aio.models.generate_content(
                    model="gemini-2.5-flash", contents="x"
                )

        run(go())
        assert sim.stats(log=False)["faults"] == {"garbage": 2}


def test_sync_clients_work_too_and_a_taken_port_is_an_oserror() -> None:
    from .helpers import gemini_client

    with SimServer(SimConfig(latency_s=0.0)) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="k", max_retries=0)
        assert client.chat.completions.create(**chat_kwargs()).choices[0].message.content
        assert (
            gemini_client(sim).models.generate_content(model="gemini-2.5-flash", contents="x").text
        )
        clash = SimServer(port=sim.port)
        with pytest.raises(OSError):
            clash.start()
        assert not clash.running
