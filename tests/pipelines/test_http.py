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


def test_api_key_mode_without_a_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_AUTH", "api-key")
    monkeypatch.delenv("GATEWAY_API_KEY", raising=False)
    with pytest.raises(StepError, match="Secret llmops-gateway-credentials"):
        ServiceClient("http://gateway.test")


def test_jwt_mode_exchanges_the_federated_token_for_an_entra_token(
    httpserver, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Azure workload identity's webhook puts into a labelled pod, and what Entra's token endpoint does.
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("projected-service-account-token\n")
    for name, value in {
        "GATEWAY_AUTH": "jwt",
        "GATEWAY_TOKEN_AUDIENCE": "api://llmops-gateway",
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "AZURE_CLIENT_ID": "client-123",
        "AZURE_TENANT_ID": "tenant-456",
        "AZURE_AUTHORITY_HOST": httpserver.url_for("/entra/"),
    }.items():
        monkeypatch.setenv(name, value)
    exchanges: list[dict[str, str]] = []

    def token(request: Request) -> Response:
        exchanges.append(dict(request.form))
        return Response('{"access_token": "entra-access-token", "expires_in": 3599, "token_type": "Bearer"}',
                        content_type="application/json")  # fmt: skip

    httpserver.expect_request("/entra/tenant-456/oauth2/v2.0/token", method="POST").respond_with_handler(token)
    httpserver.expect_request("/thing", headers={"Authorization": "Bearer entra-access-token"}).respond_with_json(
        {"ok": 1}
    )
    with ServiceClient(httpserver.url_for("/"), retry=FAST) as client:
        assert client.json("GET", "/thing") == {"ok": 1}
        assert client.json("GET", "/thing") == {"ok": 1}
    # One exchange: the token is reused until shortly before it expires.
    assert exchanges == [
        {
            "client_id": "client-123",
            "scope": "api://llmops-gateway/.default",
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "projected-service-account-token",
        }
    ]


def test_jwt_mode_without_workload_identity_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_AUTH", "jwt")
    for name in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATEWAY_TOKEN_AUDIENCE", "api://llmops-gateway")
    with pytest.raises(StepError, match="AZURE_FEDERATED_TOKEN_FILE, AZURE_CLIENT_ID, AZURE_TENANT_ID is not set"):
        ServiceClient("http://gateway.test")


def test_the_mounted_ca_bundle_is_trusted_besides_the_public_roots(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pipelines.steps._http import step_tls_context

    # A private CA, like Let's Encrypt's staging issuer: in no public trust store.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "llmops test CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(key, hashes.SHA256())
    )  # fmt: skip
    bundle = tmp_path / "ca.crt"
    bundle.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    monkeypatch.delenv("LLMOPS_CA_BUNDLE", raising=False)
    public = step_tls_context().cert_store_stats()["x509_ca"]
    monkeypatch.setenv("LLMOPS_CA_BUNDLE", str(bundle))
    assert step_tls_context().cert_store_stats()["x509_ca"] == public + 1
    # Without the optional ConfigMap the mount is empty: the public roots alone.
    monkeypatch.setenv("LLMOPS_CA_BUNDLE", str(tmp_path / "not-mounted" / "ca.crt"))
    assert step_tls_context().cert_store_stats()["x509_ca"] == public
