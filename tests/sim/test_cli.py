"""``rewts sim`` in the foreground: serves both formats, stops on Ctrl-C, refuses remote hosts."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

from typer.testing import CliRunner

from rewts.cli import app
from rewts.cli.sim_cmd import is_loopback

from .helpers import chat_kwargs, gemini_client, openai_client


class _Addr:
    """Just enough of a SimServer for the client helpers."""

    def __init__(self, openai_base_url: str, gemini_base_url: str) -> None:
        self.openai_base_url = openai_base_url
        self.gemini_base_url = gemini_base_url


def test_serves_both_formats_until_ctrl_c() -> None:
    env = {**os.environ, "SIM_TEST_KEY": "cli-key-123456"}
    code = "from rewts.cli import main; main()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "sim",
            "--port",
            "0",
            "--latency",
            "0",
            "--api-key-env",
            "SIM_TEST_KEY",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # SIGINT back to its default in the child: a pytest started in the background
        # ignores SIGINT and its children would inherit that (the Ctrl-C below would be lost)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Ctrl-C") or not line:
                break
        text = "".join(lines)
        openai_url = re.search(r"OpenAI format: (\S+)", text).group(1)
        gemini_url = re.search(r"Gemini format: (\S+)", text).group(1)
        assert f"--provider openai --base-url {openai_url}" in text
        assert f"--provider gemini --base-url {gemini_url}" in text
        assert "cli-key-123456" not in text
        addr = _Addr(openai_url, gemini_url)

        async def go():
            oai = openai_client(addr, key="cli-key-123456")
            a = await oai.chat.completions.create(**chat_kwargs())
            await oai.close()
            g = await gemini_client(addr, key="cli-key-123456").aio.models.generate_content(
                model="gemini-2.5-flash", contents="hi"
            )
            return a, g

        a, g = asyncio.run(go())
        assert a.choices[0].message.content and g.text
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=15)
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err


def test_refuses_a_non_loopback_host_unless_allowed() -> None:
    result = CliRunner().invoke(app, ["sim", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output and "Traceback" not in result.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


def test_bad_settings_are_one_clear_line() -> None:
    result = CliRunner().invoke(app, ["sim", "--error-rate", "2"])
    assert result.exit_code == 2
    assert "error_rate" in result.output and "Traceback" not in result.output
