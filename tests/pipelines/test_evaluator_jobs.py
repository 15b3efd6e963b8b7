"""evaluate-business and judge as NeMo Evaluator `custom` jobs too: the configs (f1/string-check; llm-judge with
the judge NIM as its model) pass the SDK-checking fake, one job per step found again on retry, never created
blindly twice, awaited, and its id and aggregate scores in the step outputs; the per-example scores stay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("nemo_microservices")

from fakes import FakeNim, FakePlatform, Gateway
from werkzeug import Request, Response

from pipelines.steps._common import StepError, TransientError
from pipelines.steps.evaluate_business import main as evaluate_business
from pipelines.steps.judge import main as judge

KEY = "gateway-key"
UID = "0b7e3c1a-1111-2222-3333-444455556666"
MODEL = "meta/llama-3.1-8b-instruct"
JUDGE = "meta/llama-3.3-70b-instruct"
FILES_URL = "hf://datasets/llmops/customer-care-abc/testing/testing.jsonl"
EXAMPLES = [("Where is invoice 1?", "Under Billing."), ("Where is invoice 2?", "Under Statements.")]


def _jsonl() -> str:
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in EXAMPLES]
    return "".join(json.dumps(row) + "\n" for row in rows)


class World:
    def __init__(self, tmp_path: Path) -> None:
        gateway = Gateway(api_key=KEY)
        self.platform = FakePlatform(gateway, self.score)
        self.nim = FakeNim(gateway, {MODEL}, lambda model, messages: "Under Billing.")
        self.judge = FakeNim(
            gateway, {JUDGE}, lambda model, messages: '{"correctness": 4, "relevance": 5, "fluency": 5}'
        )
        self.platform.served = self.nim.served
        self.platform.judges = self.judge.served
        self.platform.repos["llmops/customer-care-abc"] = {"testing/testing.jsonl": _jsonl().encode()}
        self.test_file = tmp_path / "testing.jsonl"
        self.test_file.write_text(_jsonl())

    @staticmethod
    def score(model: str, benchmark: str, task: str) -> float:
        return {"business": 0.5, "judge": 4.5}[benchmark]

    def stop(self) -> None:
        for server in (self.platform, self.nim, self.judge):
            server.stop()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("GATEWAY_API_KEY", KEY)
    made = World(tmp_path)
    yield made
    made.stop()


def _common(world: World, out: Path, *, evaluator: bool = True) -> list[str]:
    argv = ["--model", MODEL, "--test-file", str(world.test_file), "--nim-url", world.nim.url, "--output-dir", str(out)]
    if evaluator:
        argv += [
            "--evaluator-url", world.platform.url, "--evaluator-nim-url", world.nim.url, "--test-files-url", FILES_URL,
            "--namespace", "llmops", "--workflow-uid", UID, "--poll-initial-seconds", "0.01",
            "--poll-max-seconds", "0.02",
        ]  # fmt: skip
    return argv


def _business(world: World, out: Path, **kwargs: bool) -> int:
    return evaluate_business(_common(world, out, **kwargs))


def _judge(world: World, out: Path, **kwargs: bool) -> int:
    return judge([*_common(world, out, **kwargs), "--judge-model", JUDGE, "--judge-url", world.judge.url])


def _jobs(world: World) -> dict[str, dict]:
    return {
        job.record["custom_fields"]["llmops_benchmark"]: job.record for job in world.platform.evaluation_jobs.values()
    }


def test_business_runs_an_evaluator_custom_job_and_keeps_per_example_scores(world: World, tmp_path: Path) -> None:
    assert _business(world, tmp_path / "out") == 0
    assert world.platform.violations == []
    [record] = _jobs(world).values()
    assert record["custom_fields"] == {
        "llmops_workflow_uid": UID,
        "llmops_model": MODEL,
        "llmops_benchmark": "business",
    }
    assert record["target"]["model"]["api_endpoint"]["url"] == f"{world.nim.url}/v1/chat/completions"
    task = record["config"]["tasks"]["business"]
    assert record["config"]["type"] == "custom" and task["type"] == "chat-completion"
    assert task["dataset"] == {"files_url": FILES_URL}
    assert task["params"]["template"]["messages"] == "{{ item.messages[:-1] | tojson }}"
    assert task["metrics"]["f1"] == {"type": "f1", "params": {"ground_truth": "{{ item.messages[-1].content }}"}}
    assert task["metrics"]["exact_match"]["type"] == "string-check"
    metrics = json.loads((tmp_path / "out/metrics").read_text())
    assert metrics["per_example"]["exact_match"] == [1.0, 0.0]
    assert metrics["evaluator"] == {"business.business.f1.f1": 0.5, "business.business.exact_match.string-check": 0.5}
    assert (tmp_path / "out/evaluator-job").read_text() == record["id"]

    # A retried pod resumes the job it started instead of starting another.
    assert _business(world, tmp_path / "retry") == 0
    assert len(world.platform.evaluation_jobs) == 1
    assert (tmp_path / "retry/evaluator-job").read_text() == record["id"]


def test_judge_runs_an_llm_judge_job_whose_model_is_the_judge_nim(world: World, tmp_path: Path) -> None:
    assert _judge(world, tmp_path / "out") == 0
    assert world.platform.violations == []
    [record] = _jobs(world).values()
    [(name, metric)] = record["config"]["tasks"]["judge"]["metrics"].items()
    assert name == metric["type"] == "llm-judge"
    assert metric["params"]["model"] == {"api_endpoint": {"url": f"{world.judge.url}/v1/chat/completions",
                                                          "model_id": JUDGE, "format": "nim"}}  # fmt: skip
    assert set(metric["params"]["scores"]) == {"correctness", "relevance", "fluency"}
    assert metric["params"]["scores"]["correctness"]["parser"]["type"] == "regex"
    scores = json.loads((tmp_path / "out/scores").read_text())
    assert scores["correctness"] == 4.0 and scores["per_example"]["relevance"] == [5.0, 5.0]
    assert scores["evaluator"] == {f"judge.judge.llm-judge.{c}": 4.5 for c in ("correctness", "relevance", "fluency")}
    assert (tmp_path / "out/evaluator-job").read_text() == record["id"]


def test_the_judge_url_the_evaluator_uses_may_differ(world: World, tmp_path: Path) -> None:
    inside = "http://judge.nim.svc:8000"
    # The fake only checks the model id; the URL is what the Evaluator would call.
    assert judge([*_common(world, tmp_path), "--judge-model", JUDGE, "--judge-url", world.judge.url,
                  "--evaluator-judge-url", inside]) == 0  # fmt: skip
    [record] = _jobs(world).values()
    metric = record["config"]["tasks"]["judge"]["metrics"]["llm-judge"]
    assert metric["params"]["model"]["api_endpoint"]["url"] == f"{inside}/v1/chat/completions"


def test_without_an_evaluator_the_steps_score_in_step_only(world: World, tmp_path: Path) -> None:
    assert _business(world, tmp_path / "b", evaluator=False) == 0
    assert _judge(world, tmp_path / "j", evaluator=False) == 0
    assert world.platform.evaluation_jobs == {}
    assert "evaluator" not in json.loads((tmp_path / "b/metrics").read_text())
    assert (tmp_path / "j/evaluator-job").read_text() == ""


def test_a_failed_evaluator_job_fails_the_step(world: World, tmp_path: Path) -> None:
    original = world.platform.evaluation_job

    def failing(request, job_id):  # type: ignore[no-untyped-def]
        world.platform.evaluation_jobs[job_id].record["status"] = "failed"
        return original(request, job_id)

    world.platform.evaluation_job = failing  # type: ignore[method-assign]
    with pytest.raises(StepError, match=r"evaluation job eval-\d+ \(business\) failed"):
        _business(world, tmp_path)


def test_a_create_that_fails_transiently_is_not_blindly_repeated(world: World, tmp_path: Path) -> None:
    creates = []

    def unavailable(request: Request) -> Response:
        if request.method == "POST":
            creates.append(request.path)
            return Response("{}", status=503, content_type="application/json")
        return collection(request)

    collection = world.platform.evaluation_job_collection
    world.platform.evaluation_job_collection = unavailable  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="creating an evaluation job"):
        _business(world, tmp_path)
    # One create, then a look-up (nothing found): the template's retry (exit 75) tries again later.
    assert creates == ["/v1/evaluation/jobs"]
