"""HTTP access to the NeMo services and NIM: timeouts, bounded retries, clear errors, polling."""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import httpx

from pipelines.steps._common import StepError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")

# 429 is the services asking us to slow down: as retryable as a 5xx.
_RETRYABLE_STATUS = frozenset({429})


class PollTimeout(StepError):
    """A polled job or resource did not reach the wanted state in time."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    initial_delay: float = 1.0
    max_delay: float = 15.0

    def delays(self) -> list[float]:
        """Sleeps between attempts: doubling from initial_delay, capped at max_delay."""
        return [min(self.initial_delay * 2**n, self.max_delay) for n in range(self.attempts - 1)]


@dataclass(frozen=True)
class Backoff:
    """Polling schedule for long-running jobs: exponential, capped, bounded by an overall timeout."""

    timeout: float
    initial: float = 5.0
    maximum: float = 60.0


# Workflow pods reach NeMo and NIM through the platform gateway, which asks for this API key when its
# auth mode is `api-key`; the templates pass it from the `llmops-gateway-credentials` Secret.
GATEWAY_API_KEY_ENV = "GATEWAY_API_KEY"
GATEWAY_API_KEY_HEADER = "x-api-key"


def _gateway_headers() -> dict[str, str]:
    key = os.environ.get(GATEWAY_API_KEY_ENV)
    return {GATEWAY_API_KEY_HEADER: key} if key else {}


@cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, built once: each build reads the whole CA bundle."""
    return httpx.create_ssl_context()


class ServiceClient:
    """One base URL, a timeout on every request, retries on connection errors, 429 and 5xx."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={**_gateway_headers(), **(headers or {})},
            verify=_tls_context(),
        )

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def request(self, method: str, url: str, *, accept: Collection[int] = (200, 201), **kwargs: Any) -> httpx.Response:
        """Send a request; return the response when its status is in `accept`.

        Connection errors, 429 and 5xx are retried; once the attempts are spent they raise
        TransientError. Any other status raises StepError with the body, which is what a
        human needs to fix a bad request.
        """
        target = f"{method} {self.base_url}{url}" if url.startswith("/") else f"{method} {url}"
        delays = self._retry.delays()
        for attempt in range(self._retry.attempts):
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{target}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code in accept:
                    return response
                problem = f"{target} returned {response.status_code}: {response.text[:1000]}"
                if response.status_code < 500 and response.status_code not in _RETRYABLE_STATUS:
                    raise StepError(problem)
            if attempt < len(delays):
                log.warning("attempt %d/%d failed: %s", attempt + 1, self._retry.attempts, problem)
                time.sleep(delays[attempt])
        raise TransientError(f"gave up after {self._retry.attempts} attempts: {problem}")

    def json(self, method: str, url: str, *, accept: Collection[int] = (200, 201), **kwargs: Any) -> Any:
        response = self.request(method, url, accept=accept, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise StepError(f"{method} {url} did not return JSON: {response.text[:500]}") from exc


def poll(fetch: Callable[[], T], done: Callable[[T], bool], backoff: Backoff, what: str) -> T:
    """Call `fetch` until `done` accepts its result; `done` raises StepError on a terminal failure.

    A service that is briefly unreachable does not end the wait: only the overall timeout does,
    so a network blip cannot orphan a long job that is still running.
    """
    deadline = time.monotonic() + backoff.timeout
    delay = backoff.initial
    while True:
        try:
            value = fetch()
        except TransientError as exc:
            log.warning("still waiting for %s: %s", what, exc)
        else:
            if done(value):
                return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PollTimeout(f"timed out after {backoff.timeout:g}s waiting for {what}")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, backoff.maximum)
