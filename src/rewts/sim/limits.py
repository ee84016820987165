"""Server-side rate limits: sliding windows for requests and tokens, and a daily counter.

Only admitted requests count (a 429 costs nothing), as on the real APIs. The window length is a
setting so tests can simulate "per minute" in a couple of seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

Kind = Literal["rpm", "tpm", "rpd"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a request was refused, with what the 429 must say."""

    kind: Kind
    limit: int
    used: int
    requested: int
    #: seconds until the request would be admitted; None for the daily quota
    retry_s: float | None


class RateWindows:
    """Requests and tokens admitted in the last ``window_s`` seconds, and today's requests.

    Not thread-safe on purpose: it is only touched from the server's event loop.
    """

    def __init__(self) -> None:
        self._requests: deque[float] = deque()
        self._tokens: deque[tuple[float, int]] = deque()
        self._token_sum = 0
        self.day_count = 0

    def _expire(self, now: float, window_s: float) -> None:
        horizon = now - window_s
        while self._requests and self._requests[0] <= horizon:
            self._requests.popleft()
        while self._tokens and self._tokens[0][0] <= horizon:
            self._token_sum -= self._tokens.popleft()[1]

    def admit(
        self,
        now: float,
        tokens: int,
        *,
        window_s: float,
        rpm: int | None,
        tpm: int | None,
        rpd: int | None,
    ) -> Verdict | None:
        """Admit (and count) the request, or say which limit refuses it."""
        self._expire(now, window_s)
        if rpd is not None and self.day_count >= rpd:
            return Verdict("rpd", rpd, self.day_count, 1, None)
        if rpm is not None and len(self._requests) >= rpm:
            # admitted again when enough of the oldest requests have left the window
            oldest = self._requests[len(self._requests) - rpm]
            return Verdict("rpm", rpm, len(self._requests), 1, max(0.0, oldest + window_s - now))
        if tpm is not None and self._token_sum + tokens > tpm:
            need, wait = self._token_sum + tokens - tpm, window_s
            freed = 0
            for t, n in self._tokens:
                freed += n
                if freed >= need:
                    wait = max(0.0, t + window_s - now)
                    break
            return Verdict("tpm", tpm, self._token_sum, tokens, wait)
        self._requests.append(now)
        if tokens:
            self._tokens.append((now, tokens))
            self._token_sum += tokens
        self.day_count += 1
        return None

    def used(self, now: float, window_s: float) -> tuple[int, int]:
        """(requests, tokens) in the current window."""
        self._expire(now, window_s)
        return len(self._requests), self._token_sum

    def reset_after(self, now: float, window_s: float) -> tuple[float, float]:
        """Seconds until the request and the token windows have fully emptied."""
        self._expire(now, window_s)
        req = self._requests[-1] + window_s - now if self._requests else 0.0
        tok = self._tokens[-1][0] + window_s - now if self._tokens else 0.0
        return max(0.0, req), max(0.0, tok)
