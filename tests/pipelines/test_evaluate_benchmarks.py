"""evaluate-benchmarks and prepare-benchmarks: Evaluator 25.8's types, custom suites over prepared data, one job
per benchmark found again on retry, results with counts and standard errors, against the contract-checking fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("nemo_microservices")

from fakes import FakePlatform, Gateway
from nemo_microservices.types.evaluation_result import EvaluationResult

from pipelines.steps._benchmarks import (
    CUSTOM_SUITES,
    UnknownBenchmark,
    lm_harness_types,
    parse_benchmarks,
)
from pipelines.steps._common import StepError
from pipelines.steps.evaluate_benchmarks import flatten_results
from pipelines.steps.evaluate_benchmarks import main as evaluate
from pipelines.steps.prepare_benchmarks import main as prepare

KEY = "gateway-key"
UID = "a1b2c3d4-0000-1111-2222-333344445555"
MODEL = "meta/llama-3.1-8b-instruct"
SOURCES = Path(__file__).parent / "data" / "benchmarks"


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePlatform]:
    monkeypatch.setenv("GATEWAY_API_KEY", KEY)
    fake = FakePlatform(Gateway(api_key=KEY), lambda model, benchmark, task: 0.5)
    fake.served = lambda: {MODEL}
    fake.repos["llmops/benchmark-sources"] = {
        path.relative_to(SOURCES).as_posix(): path.read_bytes() for path in SOURCES.rglob("*") if path.is_file()
    }
    yield fake
    fake.stop()


def _prepare(platform: FakePlatform, out: Path, benchmarks: str = "gsm8k,squad,triviaqa,glue,superglue") -> dict:
    argv = [
        "--benchmarks", benchmarks, "--sources-repo", "llmops/benchmark-sources", "--limit-samples", "4",
        "--namespace", "llmops", "--datastore-url", platform.url, "--entity-store-url", platform.url,
        "--output-dir", str(out),
    ]  # fmt: skip
    assert prepare(argv) == 0
    return {name: (out / name).read_text() for name in ("datasets", "stats", "dataset-hash", "files-url")}


def _evaluate(
    platform: FakePlatform, out: Path, datasets: str, benchmarks: str = "gsm8k,squad,triviaqa,glue,superglue"
):
    argv = [
        "--model", MODEL, "--benchmarks", benchmarks, "--benchmark-datasets", datasets, "--namespace", "llmops",
        "--workflow-uid", UID, "--limit-samples", "200", "--poll-initial-seconds", "0.01", "--poll-max-seconds",
        "0.02", "--evaluator-url", platform.url, "--nim-url", "http://nim.gpu.svc:8000", "--output-dir", str(out),
    ]  # fmt: skip
    return evaluate(argv)


def test_evaluator_25_8_runs_gsm8k_but_none_of_the_old_defaults() -> None:
    types = lm_harness_types()
    assert types["gsm8k"] == {"task": "gsm8k", "endpoints": ["completions"]}
    assert not {"squad_completion", "triviaqa", "boolq", "glue", "superglue", "squad"} & types.keys()
    assert parse_benchmarks("gsm8k, squad,glue") == ["gsm8k", "squad", "glue"]
    with pytest.raises(
        UnknownBenchmark, match=r"squad_completion, boolq: not an evaluation type of NeMo Evaluator 25\.8"
    ):
        parse_benchmarks("gsm8k,squad_completion,triviaqa,boolq")


def test_prepare_benchmarks_converts_the_official_files_and_uploads_them(
    platform: FakePlatform, tmp_path: Path
) -> None:
    outputs = _prepare(platform, tmp_path)
    assert platform.violations == []
    datasets = json.loads(outputs["datasets"])
    assert {suite: sorted(tasks) for suite, tasks in datasets.items()} == {
        suite: sorted(task.name for task in tasks) for suite, tasks in CUSTOM_SUITES.items()
    }
    assert json.loads(outputs["stats"]) == {
        "squad.squad": 4, "triviaqa.triviaqa": 4, "glue.sst2": 4, "glue.mrpc": 3, "glue.rte": 3,
        "superglue.boolq": 3, "superglue.cb": 3,
    }  # fmt: skip
    squad = [json.loads(line) for line in platform.file(datasets["squad"]["squad"]).decode().splitlines()]
    answers = {record["id"]: record["answer"] for record in squad}
    assert answers.get("q3", "unanswerable") == "unanswerable" and answers.get("q1", "1642") == "1642"
    assert all("Passage:" in record["prompt"] for record in squad)
    labels = [json.loads(line)["label"] for line in platform.file(datasets["glue"]["rte"]).decode().splitlines()]
    assert sorted(labels) == ["no", "yes", "yes"]
    # Registered in the Entity Store under its content hash; the same sample next time.
    assert outputs["files-url"] == f"hf://datasets/llmops/regression-benchmarks-{outputs['dataset-hash'][:12]}"
    assert _prepare(platform, tmp_path / "again")["dataset-hash"] == outputs["dataset-hash"]


def test_one_job_per_benchmark_with_counts_and_standard_errors(platform: FakePlatform, tmp_path: Path) -> None:
    datasets = _prepare(platform, tmp_path / "prepared")["datasets"]
    assert _evaluate(platform, tmp_path / "out", datasets) == 0
    assert platform.violations == []
    jobs = {job.record["custom_fields"]["llmops_benchmark"]: job.record for job in platform.evaluation_jobs.values()}
    assert jobs["gsm8k"]["config"] == {"type": "gsm8k", "params": {"temperature": 1e-05, "top_p": 1e-05,
                                                                   "limit_samples": 200}}  # fmt: skip
    assert jobs["gsm8k"]["target"]["model"]["api_endpoint"] == {
        "url": "http://nim.gpu.svc:8000/v1/completions",
        "model_id": MODEL,
        "format": "nim",
    }
    glue = jobs["glue"]["config"]
    assert glue["type"] == "custom" and sorted(glue["tasks"]) == ["mrpc", "rte", "sst2"]
    assert glue["tasks"]["rte"]["metrics"]["accuracy"]["type"] == "string-check"
    assert jobs["squad"]["config"]["tasks"]["squad"]["metrics"]["f1"] == {
        "type": "f1",
        "params": {"ground_truth": "{{ item.answer }}"},
    }
    scores = json.loads((tmp_path / "out/scores").read_text())
    assert scores["gsm8k.gsm8k.exact_match.strict-match"] == {"value": 0.5, "count": 200, "stderr": pytest.approx(
        0.5 / 200**0.5)}  # fmt: skip
    assert scores["glue.rte.accuracy.string-check"] == {"value": 0.5, "count": 3, "stderr": pytest.approx(0.5 / 3**0.5)}
    assert json.loads((tmp_path / "out/job-ids").read_text()).keys() == jobs.keys()

    # A retried pod finds the jobs it started.
    assert _evaluate(platform, tmp_path / "retry", datasets) == 0
    assert len(platform.evaluation_jobs) == 5
    assert (tmp_path / "retry/job-ids").read_text() == (tmp_path / "out/job-ids").read_text()


def test_a_failed_job_fails_the_step(platform: FakePlatform, tmp_path: Path) -> None:
    original = platform.evaluation_job

    def failing(request, job_id):  # type: ignore[no-untyped-def]
        platform.evaluation_jobs[job_id].record["status"] = "failed"
        return original(request, job_id)

    platform.evaluation_job = failing  # type: ignore[method-assign]
    with pytest.raises(StepError, match=r"evaluation job eval-\d+ \(gsm8k\) failed"):
        _evaluate(platform, tmp_path, "{}", benchmarks="gsm8k")


def test_a_custom_suite_without_prepared_data_is_an_error(platform: FakePlatform, tmp_path: Path) -> None:
    with pytest.raises(StepError, match="squad is a custom suite but prepare-benchmarks prepared no data"):
        _evaluate(platform, tmp_path, "{}", benchmarks="squad")
    assert platform.evaluation_jobs == {}


def test_flatten_results_pairs_standard_errors_with_their_scores() -> None:
    result = EvaluationResult.model_validate(
        {
            "job": "eval-1",
            "tasks": {"gsm8k": {"metrics": {"exact_match": {"scores": {
                "strict-match": {"value": 0.75}, "strict-match_stderr": {"value": 0.02},
                "flexible-extract": {"value": 0.8, "stats": {"count": 150, "stderr": 0.03}}}}}}},
        }
    )  # fmt: skip
    assert flatten_results("gsm8k", result, default_count=200) == {
        "gsm8k.gsm8k.exact_match.strict-match": {"value": 0.75, "count": 200, "stderr": 0.02},
        "gsm8k.gsm8k.exact_match.flexible-extract": {"value": 0.8, "count": 150, "stderr": 0.03},
    }
    with pytest.raises(StepError, match="hold no scores"):
        flatten_results("gsm8k", EvaluationResult.model_validate({"job": "eval-1", "tasks": {}}), default_count=None)


def test_the_benchmark_fact_comes_from_the_current_derivation_script() -> None:
    import hashlib

    from pipelines.steps._benchmarks import FACT_FILE

    source = json.loads(FACT_FILE.read_text())["source"]
    script = FACT_FILE.parents[1] / source["generator"]
    assert source["package"] == "nvidia-lm-eval" and source["version"] == "25.8"
    assert source["file"] == "core_evals/lm_evaluation_harness/framework.yml"
    stale = "re-derive: uv run --frozen python tools/derive_evaluator_benchmarks.py <nvidia_lm_eval-25.8 wheel>"
    assert hashlib.sha256(script.read_bytes()).hexdigest() == source["generator_sha256"], stale
