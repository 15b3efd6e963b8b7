"""Retries, errors and exit codes shared by every step."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps import STEPS
from pipelines.steps.__main__ import main
from pipelines.steps._common import EXIT_TRANSIENT, StepError, TransientError
from pipelines.steps._http import Backoff, PollTimeout, RetryPolicy, ServiceClient, poll

FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.01)


def test_retry_policy_doubles_and_caps() -> None:
    assert RetryPolicy(attempts=5, initial_delay=1, max_delay=3).delays() == [1, 2, 3, 3]


def test_retries_server_errors_then_succeeds(httpserver) -> None:
    answers = iter([Response("busy", status=503), Response("slow down", status=429), Response('{"ok": 1}')])
    httpserver.expect_request("/thing").respond_with_handler(lambda request: next(answers))
    with ServiceClient(httpserver.url_for("/"), retry=FAST) as client:
        assert client.json("GET", "/thing") == {"ok": 1}


def test_gives_up_after_bounded_attempts_with_transient_error(httpserver) -> None:
    calls: list[Request] = []

    def always_down(request: Request) -> Response:
        calls.append(request)
        return Response("down", status=502)

    httpserver.expect_request("/thing").respond_with_handler(always_down)
    with ServiceClient(httpserver.url_for("/"), retry=FAST) as client, pytest.raises(TransientError, match="502"):
        client.request("GET", "/thing")
    assert len(calls) == FAST.attempts


def test_sends_the_gateway_api_key_when_the_template_provides_it(httpserver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_API_KEY", "k-123")
    httpserver.expect_oneshot_request("/thing", headers={"x-api-key": "k-123"}).respond_with_json({"ok": 1})
    with ServiceClient(httpserver.url_for("/"), retry=FAST) as client:
        assert client.json("GET", "/thing") == {"ok": 1}


def test_sends_no_gateway_key_without_one(httpserver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_API_KEY", raising=False)
    seen: list[Request] = []

    def record(request: Request) -> Response:
        seen.append(request)
        return Response('{"ok": 1}')

    httpserver.expect_oneshot_request("/thing").respond_with_handler(record)
    with ServiceClient(httpserver.url_for("/"), retry=FAST) as client:
        client.json("GET", "/thing")
    assert "x-api-key" not in seen[0].headers


def test_connection_refused_is_transient() -> None:
    with ServiceClient("http://127.0.0.1:9", retry=FAST) as client, pytest.raises(TransientError, match="Connect"):
        client.request("GET", "/")


def test_client_errors_fail_at_once_with_the_body(httpserver) -> None:
    httpserver.expect_oneshot_request("/thing").respond_with_data("name is required", status=422)
    with (
        ServiceClient(httpserver.url_for("/"), retry=FAST) as client,
        pytest.raises(StepError, match="422: name is required") as raised,
    ):
        client.request("POST", "/thing")
    assert not isinstance(raised.value, TransientError)


def test_poll_times_out() -> None:
    with pytest.raises(PollTimeout, match="waiting for nothing"):
        poll(lambda: 1, lambda _: False, Backoff(timeout=0.05, initial=0.01, maximum=0.02), "nothing")


def test_main_maps_errors_to_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.steps import gate

    def transient(argv: object) -> int:
        raise TransientError("down")

    def definitive(argv: object) -> int:
        raise StepError("bad")

    monkeypatch.setattr(gate, "main", transient)
    assert main(["gate"]) == EXIT_TRANSIENT
    monkeypatch.setattr(gate, "main", definitive)
    assert main(["gate"]) == 1
    assert main(["no-such-step"]) == 2


def test_every_step_has_a_module_with_main() -> None:
    import importlib

    pytest.importorskip("mlflow")

    for module in STEPS.values():
        assert callable(importlib.import_module(f"pipelines.steps.{module}").main)
