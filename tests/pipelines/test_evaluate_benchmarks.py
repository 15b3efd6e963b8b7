"""evaluate-benchmarks: job requests, polling and results parsing against a fake Evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps._common import StepError
from pipelines.steps.evaluate_benchmarks import flatten_results, main

# Shape of GET /v1/evaluation/jobs/{id}/results in 25.x (tasks and groups of metrics of scores).
GSM8K_RESULTS = {
    "id": "evaluation_result-1",
    "job": "eval-gsm8k",
    "tasks": {
        "gsm8k": {
            "metrics": {
                "exact_match": {"scores": {"strict-match": {"value": 0.75}, "flexible-extract": {"value": 0.8}}},
                "exact_match_stderr": {"scores": {"strict-match": {"value": 0.01}}},
            }
        }
    },
    "groups": {},
}
BOOLQ_RESULTS = {
    "tasks": {"boolq": {"metrics": {"acc": {"scores": {"acc": {"value": 0.9}, "acc_stderr": {"value": 0.005}}}}}},
    "groups": {"superglue": {"metrics": {"acc": {"scores": {"acc": {"value": 0.88}}}}}},
}


def test_flatten_results_keeps_scores_and_drops_standard_errors() -> None:
    assert flatten_results("gsm8k", GSM8K_RESULTS) == {
        "gsm8k.gsm8k.exact_match.strict-match": 0.75,
        "gsm8k.gsm8k.exact_match.flexible-extract": 0.8,
    }
    assert flatten_results("boolq", BOOLQ_RESULTS) == {
        "boolq.boolq.acc.acc": 0.9,
        "boolq.superglue.acc.acc": 0.88,
    }


def test_results_without_scores_are_an_error() -> None:
    with pytest.raises(StepError, match="no scores"):
        flatten_results("gsm8k", {"tasks": {}, "groups": {}})


def _serve_evaluator(httpserver, final_status: dict[str, str]) -> None:
    created = iter(["eval-gsm8k", "eval-boolq"])

    def create(request: Request) -> Response:
        return Response(json.dumps({"id": next(created), "status": "created"}), content_type="application/json")

    httpserver.expect_request("/v1/evaluation/jobs", method="POST").respond_with_handler(create)
    for job_id, statuses in {
        "eval-gsm8k": iter(["pending", "running", final_status["eval-gsm8k"]]),
        "eval-boolq": iter(["running", final_status["eval-boolq"]]),
    }.items():

        def status(request: Request, job_id: str = job_id, statuses=statuses) -> Response:
            state = next(statuses, final_status[job_id])
            body = {"id": job_id, "status": state, "status_details": {"progress": 50.0, "message": "boom"}}
            return Response(json.dumps(body), content_type="application/json")

        httpserver.expect_request(f"/v1/evaluation/jobs/{job_id}", method="GET").respond_with_handler(status)
    httpserver.expect_request("/v1/evaluation/jobs/eval-gsm8k/results").respond_with_json(GSM8K_RESULTS)
    httpserver.expect_request("/v1/evaluation/jobs/eval-boolq/results").respond_with_json(BOOLQ_RESULTS)


def _argv(httpserver, output_dir: Path) -> list[str]:
    return [
        "--model", "llmops/care-lora@cust-1", "--benchmarks", "gsm8k, boolq", "--namespace", "llmops",
        "--limit-samples", "50", "--poll-initial-seconds", "0.01", "--poll-max-seconds", "0.02",
        "--evaluator-url", httpserver.url_for("/"), "--nim-url", "http://nim.llm:8000/",
        "--output-dir", str(output_dir),
    ]  # fmt: skip


def test_runs_one_job_per_benchmark_and_emits_flat_scores(httpserver, tmp_path: Path) -> None:
    _serve_evaluator(httpserver, {"eval-gsm8k": "completed", "eval-boolq": "completed"})
    assert main(_argv(httpserver, tmp_path)) == 0

    created = [request.get_json() for request, _ in httpserver.log if request.method == "POST"]
    assert created == [
        {
            "namespace": "llmops",
            "target": {
                "type": "model",
                "model": {
                    "api_endpoint": {"url": "http://nim.llm:8000/v1/completions", "model_id": "llmops/care-lora@cust-1"}
                },
            },
            "config": {"type": benchmark, "params": {"temperature": 0.00001, "top_p": 0.00001, "limit_samples": 50}},
        }
        for benchmark in ("gsm8k", "boolq")
    ]
    assert json.loads((tmp_path / "scores").read_text()) == {
        "gsm8k.gsm8k.exact_match.strict-match": 0.75,
        "gsm8k.gsm8k.exact_match.flexible-extract": 0.8,
        "boolq.boolq.acc.acc": 0.9,
        "boolq.superglue.acc.acc": 0.88,
    }


def test_failed_evaluation_job_fails_the_step(httpserver, tmp_path: Path) -> None:
    _serve_evaluator(httpserver, {"eval-gsm8k": "completed", "eval-boolq": "failed"})
    with pytest.raises(StepError, match=r"eval-boolq \(boolq\) failed"):
        main(_argv(httpserver, tmp_path))
    assert not (tmp_path / "scores").exists()
