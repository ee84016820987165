"""The real ``google-genai`` SDK (async client, no SDK retries) against the simulator."""

from __future__ import annotations

import asyncio
import json
import math
import time

import aiohttp
import pytest
from google.genai import errors, types

from rewts.llm.schemas import Strategy
from rewts.sim import SimConfig, SimServer

from .helpers import STRATEGY_SCHEMA, gemini_client

MODEL = "gemini-2.5-flash"
PROMPT = "Decide for AAPL."


def run(coro):
    return asyncio.run(coro)


def json_config(**extra) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_mime_type="application/json",
        response_json_schema=STRATEGY_SCHEMA,
        thinking_config=types.ThinkingConfig(thinking_budget=0),
        **extra,
    )


def details_of(err: errors.APIError) -> dict[str, dict]:
    """The google.rpc details of an SDK error by short type name (what an adapter reads)."""
    return {d["@type"].rsplit(".", 1)[-1]: d for d in err.details["error"].get("details", [])}


def test_json_schema_answer_logprobs_usage_and_determinism() -> None:
    with SimServer(SimConfig(latency_s=0.0)) as sim:

        async def go():
            client = gemini_client(sim)
            cfg = json_config(
                system_instruction="You are a strategist.", response_logprobs=True, logprobs=3
            )
            first = await client.aio.models.generate_content(
                model=MODEL, contents=PROMPT, config=cfg
            )
            again = await client.aio.models.generate_content(
                model=MODEL, contents=PROMPT, config=cfg
            )
            other = await client.aio.models.generate_content(
                model=MODEL, contents="Decide for MSFT.", config=json_config()
            )
            return first, again, other

        first, again, other = run(go())
    Strategy.model_validate_json(first.text)
    cand = first.candidates[0]
    assert cand.finish_reason == types.FinishReason.STOP
    chosen = cand.logprobs_result.chosen_candidates
    assert "".join(c.token for c in chosen) == first.text
    assert len(cand.logprobs_result.top_candidates) == len(chosen)
    for c, top in zip(chosen, cand.logprobs_result.top_candidates, strict=True):
        assert top.candidates[0].token == c.token and len(top.candidates) == 3
        assert sum(math.exp(t.log_probability) for t in top.candidates) <= 1 + 1e-9
    assert math.isclose(cand.avg_logprobs, sum(c.log_probability for c in chosen) / len(chosen))
    usage = first.usage_metadata
    assert usage.prompt_token_count == math.ceil(len("You are a strategist.\n" + PROMPT) / 4)
    assert usage.candidates_token_count == len(chosen)
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert again.text == first.text
    assert other.text != first.text and other.candidates[0].logprobs_result is None


def test_openapi_response_schema_with_uppercase_types() -> None:
    schema = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "label": types.Schema(type=types.Type.STRING, enum=["up", "down"]),
            "score": types.Schema(type=types.Type.NUMBER, minimum=-1, maximum=1),
            "count": types.Schema(type=types.Type.INTEGER, minimum=3, maximum=5),
            "tags": types.Schema(
                type=types.Type.ARRAY,
                items=types.Schema(type=types.Type.STRING),
                min_items=2,
                max_items=2,
            ),
            "note": types.Schema(type=types.Type.STRING, nullable=True),
        },
        required=["label", "score", "count", "tags"],
    )
    with SimServer(SimConfig(latency_s=0.0)) as sim:

        async def go():
            client = gemini_client(sim)
            cfg = types.GenerateContentConfig(
                response_mime_type="application/json", response_schema=schema
            )
            return await client.aio.models.generate_content(
                model=MODEL, contents=PROMPT, config=cfg
            )

        out = run(go())
    value = json.loads(out.text)
    assert value["label"] in ("up", "down")
    assert -1 <= value["score"] <= 1 and isinstance(value["score"], float)
    assert value["count"] in (3, 4, 5)
    assert len(value["tags"]) == 2 and all(isinstance(t, str) for t in value["tags"])
    assert isinstance(value["note"], str)


def test_schema_without_json_mime_type_is_a_400() -> None:
    with SimServer(SimConfig(latency_s=0.0)) as sim:

        async def go():
            client = gemini_client(sim)
            with pytest.raises(errors.ClientError) as info:
                await client.aio.models.generate_content(
                    model=MODEL,
                    contents=PROMPT,
                    config=types.GenerateContentConfig(response_json_schema=STRATEGY_SCHEMA),
                )
            return info.value

        err = run(go())
    assert err.code == 400 and err.status == "INVALID_ARGUMENT"


def test_per_minute_429_carries_retry_info_and_quota_failure() -> None:
    with SimServer(SimConfig(latency_s=0.0, rpm_limit=1, window_s=30.0)) as sim:

        async def go():
            client = gemini_client(sim)
            await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
            with pytest.raises(errors.ClientError) as info:
                await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
            return info.value

        err = run(go())
    assert err.code == 429 and err.status == "RESOURCE_EXHAUSTED"
    assert "retry-after" not in {k.lower() for k in err.response.headers}  # Gemini never sends one
    details = details_of(err)
    violation = details["QuotaFailure"]["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    assert violation["quotaDimensions"]["model"] == MODEL and violation["quotaValue"] == "1"
    delay = details["RetryInfo"]["retryDelay"]
    assert delay.endswith("s") and 25 <= float(delay[:-1]) <= 30
    assert details["Help"]["links"]


def test_tokens_per_minute_and_per_day_quota_ids_and_no_retry_info() -> None:
    with SimServer(SimConfig(latency_s=0.0, tpm_limit=3, window_s=30.0)) as sim:

        async def go():
            client = gemini_client(sim)
            with pytest.raises(errors.ClientError) as tpm:
                await client.aio.models.generate_content(model=MODEL, contents="x" * 40)
            sim.update(tpm_limit=None, rpd_limit=1)
            await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
            with pytest.raises(errors.ClientError) as rpd:
                await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
            sim.update(rpd_limit=None, rpm_limit=1, retry_after=False)
            with pytest.raises(errors.ClientError) as bare:
                await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
            return tpm.value, rpd.value, bare.value

        tpm, rpd, bare = run(go())
    tpm_details = details_of(tpm)
    assert tpm_details["QuotaFailure"]["violations"][0]["quotaId"].startswith(
        "GenerateContentInputTokensPerModelPerMinute"
    )
    assert "RetryInfo" in tpm_details
    rpd_details = details_of(rpd)
    assert rpd_details["QuotaFailure"]["violations"][0]["quotaId"].startswith(
        "GenerateRequestsPerDayPerProjectPerModel"
    )
    # like the real API: a short RetryInfo even for the daily quota; only the quotaId tells
    assert "RetryInfo" in rpd_details
    bare_details = details_of(bare)
    assert "PerMinute" in bare_details["QuotaFailure"]["violations"][0]["quotaId"]
    assert "RetryInfo" not in bare_details


def test_wrong_key_missing_key_and_unknown_model() -> None:
    cfg = SimConfig(latency_s=0.0, api_key="gm-right-key-123456", models=(MODEL,))
    with SimServer(cfg) as sim:

        async def go():
            with pytest.raises(errors.ClientError) as wrong:
                await gemini_client(sim, key="gm-wrong-key-987654").aio.models.generate_content(
                    model=MODEL, contents=PROMPT
                )
            good = gemini_client(sim, key="gm-right-key-123456")
            with pytest.raises(errors.ClientError) as missing:
                await good.aio.models.generate_content(model="gemini-nope", contents=PROMPT)
            ok = await good.aio.models.generate_content(model=MODEL, contents=PROMPT)
            return wrong.value, missing.value, ok

        wrong, missing, ok = run(go())
    assert wrong.code == 400 and details_of(wrong)["ErrorInfo"]["reason"] == "API_KEY_INVALID"
    assert missing.code == 404 and missing.status == "NOT_FOUND"
    assert ok.text


def test_5xx_hang_and_drop() -> None:
    with SimServer(SimConfig(latency_s=0.0, error_rate=1.0)) as sim:

        async def go():
            with pytest.raises(errors.ServerError) as server:
                await gemini_client(sim).aio.models.generate_content(model=MODEL, contents=PROMPT)
            sim.update(error_rate=0.0, hang_rate=1.0)
            t0 = time.monotonic()
            # google-genai's async client sends through aiohttp when it is installed (it is a
            # rewts dependency): a timeout is asyncio's TimeoutError, a drop aiohttp's error
            with pytest.raises(TimeoutError):
                await gemini_client(sim, timeout_s=0.3).aio.models.generate_content(
                    model=MODEL, contents=PROMPT
                )
            waited = time.monotonic() - t0
            sim.update(hang_rate=0.0, drop_rate=1.0)
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await gemini_client(sim).aio.models.generate_content(model=MODEL, contents=PROMPT)
            return server.value, waited

        server, waited = run(go())
    assert server.code in (500, 502, 503)
    assert sim.stats()["faults"] == {"error": 1, "hang": 1, "drop": 1}
    assert 0.25 < waited < 3.0


def test_batch_create_poll_collect() -> None:
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.6)) as sim:

        async def go():
            client = gemini_client(sim)
            src = [
                types.InlinedRequest(
                    contents=f"Decide for period {i}.",
                    config=json_config(),
                    metadata={"key": f"task-{i}"},
                )
                for i in range(3)
            ]
            job = await client.aio.batches.create(
                model=MODEL, src=src, config={"display_name": "rewts"}
            )
            states = [job.state]
            while job.state not in (
                types.JobState.JOB_STATE_SUCCEEDED,
                types.JobState.JOB_STATE_FAILED,
            ):
                await asyncio.sleep(0.1)
                job = await client.aio.batches.get(name=job.name)
                states.append(job.state)
            single = await client.aio.models.generate_content(
                model=MODEL, contents="Decide for period 1.", config=json_config()
            )
            return job, states, single

        job, states, single = run(go())
    assert states[0] == types.JobState.JOB_STATE_PENDING
    assert types.JobState.JOB_STATE_RUNNING in states
    assert job.display_name == "rewts" and job.name.startswith("batches/")
    answers = job.dest.inlined_responses
    assert [r.metadata["key"] for r in answers] == ["task-0", "task-1", "task-2"]
    for r in answers:
        Strategy.model_validate_json(r.response.text)
    assert answers[1].response.text == single.text  # same request, same answer, batch or not
