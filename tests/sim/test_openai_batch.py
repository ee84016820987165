"""OpenAI's Batch API (files + batches) through the real SDK: submit, poll, collect."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from rewts.llm.schemas import Strategy
from rewts.sim import SimConfig, SimServer

from .helpers import chat_kwargs, json_schema_format, openai_client


def _line(custom_id: str, body: dict) -> str:
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def test_batch_submit_poll_collect_matches_single_requests() -> None:
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=0.5)) as sim:

        async def go():
            client = openai_client(sim)
            bodies = {
                f"task-{i}": chat_kwargs(f"period {i}", response_format=json_schema_format())
                for i in range(3)
            }
            lines = [_line(cid, body) for cid, body in bodies.items()] + [
                _line("broken", {"messages": []})
            ]
            upload = await client.files.create(
                file=("in.jsonl", "\n".join(lines).encode()), purpose="batch"
            )
            batch = await client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            statuses = [batch.status]
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                await asyncio.sleep(0.1)
                batch = await client.batches.retrieve(batch.id)
                statuses.append(batch.status)
            output = (await client.files.content(batch.output_file_id)).text
            errors = (await client.files.content(batch.error_file_id)).text
            single = await client.chat.completions.create(**bodies["task-1"])
            with pytest.raises(openai.NotFoundError):
                await client.batches.retrieve("batch_nope")
            await client.close()
            return statuses, batch, output, errors, single

        statuses, batch, output, errors, single = asyncio.run(go())
    assert statuses[0] == "validating" and "in_progress" in statuses and statuses[-1] == "completed"
    assert (
        batch.request_counts.total,
        batch.request_counts.completed,
        batch.request_counts.failed,
    ) == (4, 3, 1)
    results = {r["custom_id"]: r for r in map(json.loads, output.splitlines())}
    assert sorted(results) == ["task-0", "task-1", "task-2"]
    for r in results.values():
        assert r["response"]["status_code"] == 200 and r["error"] is None
        Strategy.model_validate_json(r["response"]["body"]["choices"][0]["message"]["content"])
    # same request, same answer, batch or not
    assert (
        results["task-1"]["response"]["body"]["choices"][0]["message"]["content"]
        == single.choices[0].message.content
    )
    (failed,) = map(json.loads, errors.splitlines())
    assert failed["custom_id"] == "broken" and failed["response"]["status_code"] == 400


def test_batch_cancel_and_wrong_key() -> None:
    with SimServer(SimConfig(latency_s=0.0, batch_delay_s=30.0, api_key="sk-right-123456")) as sim:

        async def go():
            client = openai_client(sim, key="sk-right-123456")
            upload = await client.files.create(
                file=("in.jsonl", _line("a", chat_kwargs()).encode()), purpose="batch"
            )
            batch = await client.batches.create(
                input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            cancelled = await client.batches.cancel(batch.id)
            with pytest.raises(openai.AuthenticationError):
                await openai_client(sim, key="sk-wrong-123456").batches.retrieve(batch.id)
            await client.close()
            return cancelled

        cancelled = asyncio.run(go())
    assert cancelled.status == "cancelled" and cancelled.output_file_id is None
