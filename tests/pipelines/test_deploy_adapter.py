"""deploy-adapter: model entity check, NIM /v1/models polling, promotion record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps._common import StepError
from pipelines.steps.deploy_adapter import main

ADAPTER = "llmops/care-lora@cust-1"


def _argv(httpserver, output_dir: Path, *extra: str) -> list[str]:
    url = httpserver.url_for("/")
    return [
        "--model", ADAPTER, "--timeout-seconds", "1", "--poll-initial-seconds", "0.01",
        "--poll-max-seconds", "0.02", "--entity-store-url", url, "--nim-url", url,
        "--output-dir", str(output_dir), *extra,
    ]  # fmt: skip


def _serve_nim_listing(httpserver, appears_after: int) -> None:
    calls = {"count": 0}

    def models(request: Request) -> Response:
        calls["count"] += 1
        ids = ["meta/llama-3.1-8b-instruct"] + ([ADAPTER] if calls["count"] > appears_after else [])
        body = {"object": "list", "data": [{"id": model, "object": "model"} for model in ids]}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/models", method="GET").respond_with_handler(models)


def test_waits_until_nim_lists_the_adapter(httpserver, tmp_path: Path) -> None:
    httpserver.expect_request(f"/v1/models/{ADAPTER}", method="GET").respond_with_json({"name": "care-lora@cust-1"})
    _serve_nim_listing(httpserver, appears_after=2)
    assert main(_argv(httpserver, tmp_path)) == 0
    assert sum(request.path == "/v1/models" for request, _ in httpserver.log) == 3
    assert not any(request.method == "PATCH" for request, _ in httpserver.log)
    assert (tmp_path / "model-id").read_text() == ADAPTER


def test_promotion_merges_custom_fields(httpserver, tmp_path: Path) -> None:
    httpserver.expect_request(f"/v1/models/{ADAPTER}", method="GET").respond_with_json(
        {"name": "care-lora@cust-1", "custom_fields": {"team": "care"}}
    )
    httpserver.expect_request(f"/v1/models/{ADAPTER}", method="PATCH").respond_with_json({})
    _serve_nim_listing(httpserver, appears_after=0)
    assert main(_argv(httpserver, tmp_path, "--promote", "true", "--workflow", "lora-abc")) == 0
    [patch] = [request for request, _ in httpserver.log if request.method == "PATCH"]
    fields = patch.get_json()["custom_fields"]
    assert fields["team"] == "care"
    assert fields["llmops_promoted_by"] == "lora-abc"
    assert fields["llmops_promoted_at"].endswith("+00:00")


def test_missing_model_entity_fails_before_polling(httpserver, tmp_path: Path) -> None:
    httpserver.expect_request(f"/v1/models/{ADAPTER}").respond_with_json({"detail": "not found"}, status=404)
    with pytest.raises(StepError, match="does not exist in the Entity Store"):
        main(_argv(httpserver, tmp_path))
    assert not any(request.path == "/v1/models" for request, _ in httpserver.log)


def test_times_out_when_nim_never_lists_the_adapter(httpserver, tmp_path: Path) -> None:
    httpserver.expect_request(f"/v1/models/{ADAPTER}", method="GET").respond_with_json({})
    _serve_nim_listing(httpserver, appears_after=10**6)
    with pytest.raises(StepError, match=f"timed out after 1s waiting for NIM to list {ADAPTER}"):
        main(_argv(httpserver, tmp_path))
