"""HTTP access to the NeMo services and NIM through the platform gateway: authentication in every gateway
mode, the platform's CA bundle, timeouts, bounded retries, clear errors, polling.

Gateway authentication (the platform writes the mode into the `llmops-gateway-client` ConfigMap):
  api-key  the key from the `llmops-gateway-credentials` Secret, sent as `x-api-key` on every request,
           downloads included;
  jwt      an Entra access token for the gateway API, obtained with the pod's Azure workload identity: the
           projected service account token ($AZURE_FEDERATED_TOKEN_FILE) is exchanged with the client
           credentials flow, as a `jwt-bearer` client assertion, for a token whose scope is
           `<audience>/.default` (https://learn.microsoft.com/entra/identity-platform/
           v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential);
  none     nothing (a gateway without auth, local runs).
TLS: the certifi roots plus, when the `llmops-ca-bundle` ConfigMap is mounted, the CAs it holds (dev's
gateway certificate comes from Let's Encrypt's staging issuer, which no public trust store has).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import certifi
import httpx
import nemo_microservices as nemo

from pipelines.steps._common import StepError, TransientError, env

log = logging.getLogger(__name__)

T = TypeVar("T")

# 429 is the services asking us to slow down: as retryable as a 5xx.
_RETRYABLE_STATUS = frozenset({429})
# NeMo job statuses (Customizer and Evaluator alike) after which the job never completes.
JOB_FAILED = frozenset({"failed", "cancelled"})

GATEWAY_AUTH_ENV = "GATEWAY_AUTH"
GATEWAY_API_KEY_ENV = "GATEWAY_API_KEY"
GATEWAY_API_KEY_HEADER = "x-api-key"
GATEWAY_TOKEN_AUDIENCE_ENV = "GATEWAY_TOKEN_AUDIENCE"
CA_BUNDLE_ENV = "LLMOPS_CA_BUNDLE"
AUTH_MODES = ("api-key", "jwt", "none")
# Renew a token this long before it expires, so no request leaves with one about to lapse.
TOKEN_RENEWAL_MARGIN = 300.0
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class PollTimeout(StepError):
    """A polled job or resource did not reach the wanted state in time."""


class NotFound(StepError):
    """The service answered 404 for the thing asked about."""


class Conflict(StepError):
    """The service answered 409: what a create was to make exists already."""


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


@cache
def tls_context(extra_ca_file: str | None) -> ssl.SSLContext:
    """certifi's roots plus the platform's CA bundle, built once per bundle: each build reads every root."""
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def step_tls_context() -> ssl.SSLContext:
    bundle = env(CA_BUNDLE_ENV)
    # The ConfigMap volume is optional: without the ConfigMap the mount is an empty directory.
    usable = bundle if bundle and Path(bundle).is_file() and Path(bundle).stat().st_size > 0 else None
    return tls_context(usable)


class EntraTokenSource:
    """Entra access tokens for one audience, from the pod's federated service account token, renewed early."""

    def __init__(self, *, authority: str, tenant: str, client_id: str, token_file: str, audience: str) -> None:
        self._url = f"{authority.rstrip('/')}/{tenant}/oauth2/v2.0/token"
        self._client_id = client_id
        self._token_file = Path(token_file)
        self._scope = audience if audience.endswith("/.default") else f"{audience.rstrip('/')}/.default"
        self._lock = threading.Lock()
        self._token = ""
        self._expires_at = 0.0

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or time.time() > self._expires_at - TOKEN_RENEWAL_MARGIN:
                self._token, lifetime = self._request()
                self._expires_at = time.time() + lifetime
            return self._token

    def _request(self) -> tuple[str, float]:
        # Kubelet rotates the projected token: read it for every exchange.
        assertion = self._token_file.read_text(encoding="utf-8").strip()
        form = {
            "client_id": self._client_id,
            "scope": self._scope,
            "grant_type": "client_credentials",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        }
        try:
            with httpx.Client(timeout=30.0, verify=step_tls_context()) as client:
                response = client.post(self._url, data=form)
        except httpx.TransportError as exc:
            raise TransientError(f"Entra token endpoint {self._url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"Entra token endpoint returned {response.status_code}")
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or "access_token" not in body:
            detail = body.get("error_description") or response.text[:500]
            raise StepError(f"Entra refused a token for scope {self._scope} to client {self._client_id}: {detail}")
        return str(body["access_token"]), float(body.get("expires_in", 3600))


_token_sources: dict[tuple[str, ...], EntraTokenSource] = {}
_token_sources_lock = threading.Lock()


def _entra_token_source() -> EntraTokenSource:
    names = {
        "token_file": "AZURE_FEDERATED_TOKEN_FILE",
        "client_id": "AZURE_CLIENT_ID",
        "tenant": "AZURE_TENANT_ID",
        "audience": GATEWAY_TOKEN_AUDIENCE_ENV,
    }
    values = {key: env(name) for key, name in names.items()}
    if missing := [names[key] for key, value in values.items() if not value]:
        raise StepError(
            f"gateway auth is jwt but {', '.join(missing)} is not set: the pod needs the label "
            "azure.workload.identity/use=true, its ServiceAccount the annotation azure.workload.identity/client-id, "
            f"and ${GATEWAY_TOKEN_AUDIENCE_ENV} the gateway API's audience"
        )
    authority = env("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/") or ""
    key = (authority, *(str(values[name]) for name in names))
    with _token_sources_lock:
        if key not in _token_sources:
            _token_sources[key] = EntraTokenSource(authority=authority, **{k: str(v) for k, v in values.items()})
        return _token_sources[key]


class GatewayAuth(httpx.Auth):
    """Adds the gateway credential of the configured mode to every request; renews a refused token once."""

    def __init__(self) -> None:
        mode = env(GATEWAY_AUTH_ENV) or ("api-key" if env(GATEWAY_API_KEY_ENV) else "none")
        if mode not in AUTH_MODES:
            raise StepError(f"${GATEWAY_AUTH_ENV} is {mode!r}; allowed: {', '.join(AUTH_MODES)}")
        self.mode = mode
        self._api_key = env(GATEWAY_API_KEY_ENV)
        if mode == "api-key" and not self._api_key:
            raise StepError(
                f"gateway auth is api-key but ${GATEWAY_API_KEY_ENV} is empty: "
                "the Secret llmops-gateway-credentials (key api-key) is missing"
            )
        self._tokens = _entra_token_source() if mode == "jwt" else None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._api_key and self.mode == "api-key":
            request.headers[GATEWAY_API_KEY_HEADER] = self._api_key
        if self._tokens is None:
            yield request
            return
        request.headers["Authorization"] = f"Bearer {self._tokens.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._tokens.token(renew=True)}"
            yield request


class ServiceClient:
    """One base URL behind the gateway, a timeout on every request, retries on connection errors, 429, 5xx."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        gateway: bool = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=dict(headers or {}),
            # A service outside the platform (an external judge endpoint) must not see the gateway's credential.
            auth=GatewayAuth() if gateway else None,
            verify=step_tls_context(),
            follow_redirects=True,
        )

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        accept: Collection[int] = (200, 201),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request; return the response when its status is in `accept`.

        Connection errors, 429 and 5xx are retried; once the attempts are spent they raise
        TransientError. Any other status raises StepError with the body, which is what a
        human needs to fix a bad request.
        """
        target = f"{method} {self.base_url}{url}" if url.startswith("/") else f"{method} {url}"
        policy = self._retry
        delays = policy.delays()
        for attempt in range(policy.attempts):
            try:
                response = self._client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                problem = f"{target}: {type(exc).__name__}: {exc}"
            else:
                if response.status_code in accept:
                    return response
                problem = f"{target} returned {response.status_code}: {response.text[:1000]}"
                if response.status_code == 404:
                    raise NotFound(problem)
                if response.status_code < 500 and response.status_code not in _RETRYABLE_STATUS:
                    raise StepError(problem)
            if attempt < len(delays):
                log.warning("attempt %d/%d failed: %s", attempt + 1, policy.attempts, problem)
                time.sleep(delays[attempt])
        raise TransientError(f"gave up after {policy.attempts} attempts: {problem}")

    def json(self, method: str, url: str, *, accept: Collection[int] = (200, 201), **kwargs: Any) -> Any:
        response = self.request(method, url, accept=accept, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise StepError(f"{method} {url} did not return JSON: {response.text[:500]}") from exc


def nemo_client(base_url: str, *, timeout: float = 60.0, max_retries: int = 3) -> nemo.NeMoMicroservices:
    """The official NeMo microservices SDK for one service behind the gateway, with the gateway's auth and CAs.

    The SDK retries connection errors, 408, 409, 429 and 5xx itself; a create goes through
    `.with_options(max_retries=0)` instead: if its answer is lost, the caller looks the thing up before
    deciding to create it again, so a retry never starts a second GPU job.
    """
    http_client = nemo.DefaultHttpxClient(auth=GatewayAuth(), verify=step_tls_context())
    return nemo.NeMoMicroservices(base_url=base_url, timeout=timeout, max_retries=max_retries, http_client=http_client)


@contextmanager
def nemo_errors(what: str) -> Iterator[None]:
    """Translate SDK errors into the steps' exit-code classes: 404, 409, other 4xx, and the transient rest."""
    try:
        yield
    except nemo.NotFoundError as exc:
        raise NotFound(f"{what}: not found ({exc.message})") from exc
    except (nemo.RateLimitError, nemo.InternalServerError, nemo.APIConnectionError) as exc:
        raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except nemo.APIStatusError as exc:
        error = Conflict if isinstance(exc, nemo.ConflictError) else StepError
        raise error(f"{what} returned {exc.status_code}: {exc.response.text[:1000]}") from exc


def resume_or_create(find: Callable[[], T | None], create: Callable[[], T], *, what: str) -> tuple[T, bool]:
    """The job an earlier attempt of the step started, found by its mark, else a new one; True when found.

    `find` looks the marked job up; `create` starts it, without retries of its own (`.with_options(max_retries=0)`),
    and runs once, its SDK errors translated as creating `what`. When its answer is lost (a TransientError) the job
    may exist all the same: `find` looks again before the error is raised, so a retry never starts a second job.
    """
    existing = find()
    if existing is not None:
        return existing, True
    try:
        with nemo_errors(what):
            return create(), False
    except TransientError:
        found = find()
        if found is None:
            raise
        return found, False


def cancel_jobs_quietly(kind: str, job_ids: Iterable[str], cancel: Callable[[str], object]) -> list[str]:
    """Cancel each job, logging what cannot be cancelled instead of raising; returns the ids that failed.
    A step that gave up waiting fails on its own timeout; the exit handler decides on the failures."""
    failed = []
    for job_id in job_ids:
        try:
            with nemo_errors(f"cancelling {kind} job {job_id}"):
                cancel(job_id)
            log.info("cancelled %s job %s", kind, job_id)
        except StepError as exc:
            log.error("could not cancel %s job %s: %s", kind, job_id, exc)
            failed.append(job_id)
    return failed


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


def poll_jobs(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    backoff: Backoff,
    what: str,
    *,
    kind: str,
    job_ids: Iterable[str],
    cancel: Callable[[str], object],
) -> T:
    """`poll` for NeMo jobs of one kind: when the wait times out, the jobs of `job_ids` are cancelled (quietly: the
    timeout is the error) and the PollTimeout is re-raised, so no job keeps holding GPUs that nothing waits for.
    `job_ids` is read then: a live view of the jobs still pending names just those."""
    try:
        return poll(fetch, done, backoff, what)
    except PollTimeout:
        cancel_jobs_quietly(kind, job_ids, cancel)
        raise


def poll_consecutive(check: Callable[[], bool], *, needed: int, interval: float, timeout: float, what: str) -> None:
    """Wait until `check` holds `needed` times in a row, `interval` seconds apart.

    Behind a load-balanced gateway one answer comes from one replica; several consecutive answers make it
    likely that every replica agrees. A failed check, or an unreachable service, starts the count again.
    """
    streak = 0

    def confirmed() -> bool:
        nonlocal streak
        try:
            streak = streak + 1 if check() else 0
        except TransientError as exc:
            log.warning("%s: %s", what, exc)
            streak = 0
        return streak >= needed

    poll(confirmed, bool, Backoff(timeout, interval, interval), f"{what} ({needed} consecutive confirmations)")
