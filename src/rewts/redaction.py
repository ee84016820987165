"""URLs without their secrets: what may be stored, printed or logged of an endpoint.

Users sometimes put a key in the URL (``http://user:sk-...@host/v1`` or ``?key=...``). The
connection needs it, nothing else does: the cache's provider column, the stage records, the
summaries, ``repr``s, error lines and log records all get the URL without user, password,
query or fragment.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from typing import Any

#: a URL inside free text (a log line, an exception message): scheme://[userinfo@]rest
_URL_IN_TEXT = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s\"'<>]*)")


def url_without_secrets(url: str) -> str:
    """``url`` without user:password, query and fragment (keys sometimes travel there)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # a malformed URL: keep only what precedes any secret-bearing part
        return re.split(r"[@?#]", url, maxsplit=1)[0]
    if not parts.netloc:
        return url.split("?", 1)[0].split("#", 1)[0]
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_urls(text: str) -> str:
    """Every URL in ``text`` without its user:password and query."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: url_without_secrets(m.group(0)), text)


_installed: list[Any] = []


def install_log_redaction() -> None:
    """Strip URL secrets from every log record as it is created, for any handler.

    httpx and the SDKs log request URLs at INFO/DEBUG (``HTTP Request: POST http://user:key@...``);
    a handler-level filter would miss handlers other code attaches (pytest's, a notebook's).
    Records are only built for enabled levels, so the cost is paid by logged lines only.
    Idempotent.
    """
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return record
        clean = redact_urls(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    _installed.append(previous)
    logging.setLogRecordFactory(factory)
