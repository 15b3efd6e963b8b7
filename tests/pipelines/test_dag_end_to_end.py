"""The whole `lora-finetune-evaluate-deploy` DAG, in-process, against the upstream contract.

Every task runs its step code with exactly the parameters, environment and artifacts the YAML declares
(dag.DagRun reads them; nothing is restated here), against a fake NeMo platform that validates every
request with the nemo-microservices SDK's types and checks the gateway's API key on every call (downloads
included), fake NIMs (the candidate's and a separate judge NIM) and a real MLflow tracking server.

The published case: a LoRA adapter trained on ~50 examples lifts business accuracy from 0.74 to 0.83 on
100 test examples, TriviaQA stays at 0.60: accepted, promoted to the production model name, committed to
the GitOps repository, recorded in MLflow. A candidate that loses TriviaQA beyond the tolerance is
rejected and deleted from the Entity Store, so NIM stops serving it. A stopped run cancels its NeMo jobs.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

for module in ("mlflow", "flask", "flask_cors", "sqlalchemy", "alembic", "nemo_microservices"):
    pytest.importorskip(module)

from dag import DagRun  # noqa: E402
from fakes import FakeNim, FakePlatform, Gateway  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

import pipelines.steps._http as step_http  # noqa: E402
from pipelines.steps.prepare_dataset import assign_split, record_key  # noqa: E402

DATA = Path(__file__).parent / "data"
NAMESPACE = "llmops"
BASE = "meta/llama-3.1-8b-instruct"
JUDGE = "meta/llama-3.3-70b-instruct"
API_KEY = "gateway-key-for-tests"
SEED, TRAIN, VALIDATION = 42, 0.3, 0.1
TEST_EXAMPLES, BASE_CORRECT, CANDIDATE_CORRECT = 100, 74, 83
WRONG_ANSWER = "Sorry, I cannot help with that."
BENCHMARKS = {"gsm8k": 0.55, "squad": 0.80, "triviaqa": 0.60, "sst2": 0.90, "mrpc": 0.70, "rte": 0.65,
              "boolq": 0.75, "cb": 0.60}  # fmt: skip
RECORD_FILE = Path("/tmp/issue13-mlflow-record.txt")


def customer_care_records() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Raw records whose hash split (the workflow's seed and fractions) has exactly 100 test examples."""
    records, tests = [], []
    number = 0
    while len(tests) < TEST_EXAMPLES:
        record = {
            "id": f"ticket-{number}",
            "prompt": f"Where do I find the charges of invoice {number}?",
            "completion": f"Invoice {number} charges are listed under Billing, then Statements, in your portal.",
        }
        records.append(record)
        if assign_split(record_key(record), SEED, TRAIN, VALIDATION) == "testing":
            tests.append(record)
        number += 1
    return records, tests


class FastClock:
    """Polling sleeps and deadlines of the steps, 1000 times faster: a 15 s poll interval takes 15 ms."""

    scale = 1000.0

    def monotonic(self) -> float:
        return time.monotonic() * self.scale

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.scale)

    def time(self) -> float:
        return time.time()


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(step_http, "time", FastClock())


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def gitops_repo(tmp_path: Path) -> Path:
    bare = tmp_path / "gitops.git"
    _git("init", "--quiet", "--bare", "--initial-branch", "main", str(bare))
    seed = tmp_path / "gitops-seed"
    _git("clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text("environments\n")
    _git("add", "README.md", cwd=seed)
    _git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "init", cwd=seed)
    _git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return bare


class Case:
    """The platform of one pipeline run: fakes, raw data in the Data Store, the workflow's arguments."""

    def __init__(self, tmp_path: Path, tracking_uri: str, gitops: Path, *, candidate_triviaqa: float = 0.60) -> None:
        self.records, tests = customer_care_records()
        self.base_correct = {record["prompt"] for record in tests[:BASE_CORRECT]}
        self.candidate_correct = {record["prompt"] for record in tests[:CANDIDATE_CORRECT]}
        self.references = {record["prompt"]: record["completion"] for record in self.records}
        self.candidate_triviaqa = candidate_triviaqa
        gateway = Gateway(api_key=API_KEY)
        self.platform = FakePlatform(gateway, self.benchmark_score)
        self.nim = FakeNim(gateway, {BASE}, self.answer, platform=self.platform)
        self.judge = FakeNim(gateway, {JUDGE}, self.verdict)
        self.platform.served = self.nim.served
        self.platform.judges = self.judge.served
        self.platform.repos["llmops/customer-care-raw"] = {
            "records.jsonl": "".join(json.dumps(record) + "\n" for record in self.records).encode()
        }
        self.platform.repos["llmops/benchmark-sources"] = {
            path.relative_to(DATA / "benchmarks").as_posix(): path.read_bytes()
            for path in (DATA / "benchmarks").rglob("*")
            if path.is_file()
        }
        self.uid = str(uuid.uuid4())
        self.tracking_uri = tracking_uri
        self.experiment = f"lora-finetune-evaluate-deploy-{self.uid[:8]}"
        self.gitops = gitops
        self.run = DagRun(
            "lora-finetune-evaluate-deploy",
            workdir=tmp_path / "run",
            uid=self.uid,
            arguments={
                # What the platform program fills in per environment.
                **dict.fromkeys(
                    ["datastore-url", "entity-store-url", "customizer-url", "evaluator-url"], self.platform.url
                ),
                "nim-url": self.nim.url,
                "evaluator-nim-url": self.nim.url,
                "judge-url": self.judge.url,
                "evaluator-judge-url": self.judge.url,
                "mlflow-tracking-uri": tracking_uri,
                "gitops-repo-url": gitops.as_uri(),
                "git-commit": "3f2c1ab",
                "config-revision": "platform-config@9d41e07",
                # What the data scientist passes with -p: the case's split, a small benchmark sample.
                "mlflow-experiment": self.experiment,
                "train-fraction": str(TRAIN),
                "validation-fraction": str(VALIDATION),
                "min-benchmark-samples": "3",
            },
            secrets={
                "llmops-gateway-credentials": {"api-key": API_KEY},
                "llmops-pipeline-secrets": {"anonymization-salt": "pepper"},
                "mlflow-tracking-credentials": {"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"},
            },
            config_maps={"llmops-gateway-client": {"auth": "api-key"}},
        )

    def benchmark_score(self, model: str, benchmark: str, task: str) -> float:
        """A benchmark task's score; for the business and judge Evaluator jobs, what the in-step scoring finds
        (business: the share answered exactly; judge: the mean rating of a criterion, see verdict)."""
        correct = (BASE_CORRECT if model == BASE else CANDIDATE_CORRECT) / TEST_EXAMPLES
        if benchmark == "business":
            return correct
        if benchmark == "judge":
            return 4.0 if task == "fluency" else 5 * correct + 2 * (1 - correct)
        if task == "triviaqa" and model != BASE:
            return self.candidate_triviaqa
        return BENCHMARKS[task]

    def answer(self, model: str, messages: list[dict[str, str]]) -> str:
        prompt = messages[-1]["content"]
        correct = self.base_correct if model == BASE else self.candidate_correct
        return self.references[prompt] if prompt in correct else WRONG_ANSWER

    def verdict(self, model: str, messages: list[dict[str, str]]) -> str:
        text = messages[-1]["content"]
        reference = text.split("REFERENCE ANSWER:\n")[1].split("\n\nCANDIDATE ANSWER:")[0]
        answer = text.split("CANDIDATE ANSWER:\n")[1]
        score = 5 if answer == reference else 2
        return json.dumps({"correctness": score, "relevance": score, "fluency": 4})

    def candidate(self) -> str:
        return self.run.results["customize"].parameters["output-model"]

    def mlflow_run(self) -> Any:
        client = MlflowClient(tracking_uri=self.tracking_uri)
        experiment = client.get_experiment_by_name(self.experiment)
        [run] = client.search_runs([experiment.experiment_id], filter_string=f"tags.workflow_uid = '{self.uid}'")
        return run

    def close(self) -> None:
        for server in (self.platform, self.nim, self.judge):
            server.stop()

    def assert_contract_kept(self) -> None:
        assert self.platform.violations == []
        assert self.nim.violations == [] and self.judge.violations == []


@pytest.fixture
def case_factory(tmp_path: Path, mlflow_tracking_uri: str, gitops_repo: Path) -> Iterator[Any]:
    cases: list[Case] = []

    def make(**kwargs: Any) -> Case:
        cases.append(Case(tmp_path, mlflow_tracking_uri, gitops_repo, **kwargs))
        return cases[-1]

    yield make
    for case in cases:
        case.close()


def test_the_case_is_accepted_promoted_and_recorded(case_factory: Any) -> None:
    case = case_factory()
    status = case.run.run()
    assert status == "Succeeded", case.run.report()
    case.assert_contract_kept()
    results = case.run.results
    decision = json.loads(results["gate"].parameters["decision"])
    assert decision["decision"] == "accept"
    assert decision["reason"].startswith("accept (95% CI): business f1 0.740 -> 0.830 (+0.090, CI [+0.")
    assert results["discard"].phase == "Omitted"

    # Customizer ran a customization config (created for the target), under the workflow's job name.
    [job] = [job.record for job in case.platform.customization_jobs.values()]
    assert job["config"] in case.platform.configs and case.platform.configs[job["config"]]["target"] == (
        "meta/llama-3.1-8b-instruct@2.0"
    )
    assert job["description"] == f"LoRA SFT for llmops workflow {case.uid}"
    # Evaluator ran gsm8k as an LM Harness type, the other suites as custom jobs over prepared data.
    types_run = sorted({(j.record["config"]["type"], j.record["custom_fields"]["llmops_benchmark"])
                        for j in case.platform.evaluation_jobs.values()})  # fmt: skip
    assert types_run == [("custom", "business"), ("custom", "glue"), ("custom", "judge"), ("custom", "squad"),
                         ("custom", "superglue"), ("custom", "triviaqa"), ("gsm8k", "gsm8k")]  # fmt: skip
    # Business and judge ran as Evaluator custom jobs too, over the test split the upload step put in the Data
    # Store, for the base model and the candidate: f1/string-check, and an llm-judge metric judged by the judge NIM.
    test_split = f"{results['upload'].parameters['files-url']}/testing/testing.jsonl"
    evaluator_jobs = {
        (fields["llmops_benchmark"], fields["llmops_model"]): j.record
        for j in case.platform.evaluation_jobs.values()
        if (fields := j.record["custom_fields"])["llmops_benchmark"] in ("business", "judge")
    }
    assert set(evaluator_jobs) == {
        (kind, model) for kind in ("business", "judge") for model in (BASE, case.candidate())
    }
    for (kind, _), record in evaluator_jobs.items():
        assert record["custom_fields"]["llmops_workflow_uid"] == case.uid and record["status"] == "completed"
        [task] = record["config"]["tasks"].values()
        assert task["type"] == "chat-completion" and task["dataset"]["files_url"] == test_split
        if kind == "business":
            assert {name: m["type"] for name, m in task["metrics"].items()} == {
                "f1": "f1",
                "exact_match": "string-check",
            }
        else:
            [(name, metric)] = task["metrics"].items()
            assert name == metric["type"] == "llm-judge"
            assert metric["params"]["model"]["api_endpoint"] == {
                "url": f"{case.judge.url}/v1/chat/completions", "model_id": JUDGE, "format": "nim"}  # fmt: skip
            assert set(metric["params"]["scores"]) == {"correctness", "relevance", "fluency"}

    # Promotion: the production name now points at the candidate's files, NIM serves it, Git records it.
    candidate = case.candidate()
    assert re.fullmatch(rf"llmops/customer-care-lora-candidate-{case.uid}@cust-\d+", candidate)
    alias = case.platform.models["llmops/customer-care"]
    assert alias["artifact"] == case.platform.models[candidate]["artifact"]
    assert alias["custom_fields"]["model"] == candidate
    assert "llmops/customer-care" in case.nim.served()
    promotion = json.loads(_git("--git-dir", str(case.gitops), "show", "main:promotions/llmops--customer-care.json"))
    assert promotion["model"] == candidate and promotion["workflow_uid"] == case.uid
    assert json.loads(results["deploy"].parameters["promotion"])["gitops_commit"] == _git(
        "--git-dir", str(case.gitops), "rev-parse", "main"
    )

    run = case.mlflow_run()
    assert run.info.status == "FINISHED"
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    assert params["judge_model"] == JUDGE and params["regression_tolerance"] == "0.02"
    assert params["train_fraction"] == "0.3" and params["min_examples"] == "30"
    assert params["customization_job"] == job["id"] and params["customization_config"] == job["config"]
    assert set(json.loads(params["evaluation_jobs"])["candidate"]) == {"gsm8k", "squad", "triviaqa", "glue",
                                                                       "superglue"}  # fmt: skip
    assert metrics["base.business.f1"] == pytest.approx(0.74)
    assert metrics["candidate.business.f1"] == pytest.approx(0.83)
    assert metrics["candidate.benchmarks.triviaqa.triviaqa.exact_match.string-check.value"] == pytest.approx(0.6)
    assert metrics["gate.business f1.delta"] == pytest.approx(0.09)
    # The Evaluator's aggregate scores reach MLflow beside the step's own, and the job ids are parameters.
    assert metrics["candidate.business.evaluator.business.business.f1.f1"] == pytest.approx(0.83)
    assert metrics["base.judge.evaluator.judge.judge.llm-judge.correctness"] == pytest.approx(4.22)
    for kind in ("business", "judge"):
        logged = json.loads(params[f"{kind}_evaluation_jobs"])
        assert logged == {"base": evaluator_jobs[kind, BASE]["id"], "candidate": evaluator_jobs[kind, candidate]["id"]}
    assert tags["git_commit"] == "3f2c1ab" and tags["config_revision"] == "platform-config@9d41e07"
    assert tags["decision"] == "accept" and tags["promotion.alias"] == "llmops/customer-care"
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    training = inputs[results["upload"].parameters["dataset-name"]]
    assert training.dataset.digest == results["prepare"].parameters["dataset-hash"][:36]
    assert {tag.key: tag.value for tag in training.tags} == {"mlflow.data.context": "training"}
    assert "regression-benchmarks" in inputs
    RECORD_FILE.write_text(describe(run))


def test_a_triviaqa_regression_is_rejected_and_the_adapter_deleted(case_factory: Any) -> None:
    case = case_factory(candidate_triviaqa=0.50)
    status = case.run.run()
    assert status == "Failed", case.run.report()
    case.assert_contract_kept()
    results = case.run.results
    assert results["gate"].phase == "Failed"
    decision = json.loads(results["gate"].parameters["decision"])
    assert decision["decision"] == "reject"
    assert "benchmark triviaqa.triviaqa.exact_match.string-check 0.600 -> 0.500 (-0.100" in decision["reason"]
    assert results["deploy"].phase == "Omitted" and results["discard"].phase == "Succeeded"
    candidate = case.candidate()
    assert candidate not in case.platform.models
    assert candidate not in case.nim.served()
    assert "llmops/customer-care" not in case.platform.models
    assert _git("--git-dir", str(case.gitops), "ls-tree", "--name-only", "main") == "README.md"
    run = case.mlflow_run()
    assert run.info.status == "FAILED"
    assert run.data.tags["decision"] == "reject" and run.data.tags["adapter_deleted"] == candidate


def test_a_stopped_run_cancels_its_jobs(case_factory: Any) -> None:
    case = case_factory()
    case.platform.hold_jobs = True
    runner = threading.Thread(target=case.run.run)
    runner.start()
    deadline = time.monotonic() + 60

    def running(jobs: dict[str, Any]) -> list[str]:
        with case.platform.lock:
            return [job_id for job_id, job in jobs.items() if job.record["status"] == "running"]

    def kinds(job_ids: list[str]) -> set[str]:
        with case.platform.lock:
            return {case.platform.evaluation_jobs[i].record["custom_fields"]["llmops_benchmark"] for i in job_ids}

    # Training and the base model's evaluations run side by side: base evaluations do not wait for training.
    # They include the business and judge Evaluator jobs, which the stop must cancel too.
    while not (
        running(case.platform.customization_jobs)
        and {"business", "judge"} <= kinds(running(case.platform.evaluation_jobs))
    ):
        assert time.monotonic() < deadline, case.run.report()
        time.sleep(0.02)
    customization, evaluation = running(case.platform.customization_jobs), running(case.platform.evaluation_jobs)
    case.run.stop()
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert case.run.wait_for_stopped_steps(timeout=60), "a stopped step kept polling its cancelled job"
    assert case.run.status == "Failed"
    assert case.run.exit_results["cancel-jobs"].phase == "Succeeded", case.run.report()
    assert set(customization + evaluation) <= set(case.platform.cancelled)
    assert {"business", "judge"} <= kinds([i for i in case.platform.cancelled if i.startswith("eval-")])
    assert case.mlflow_run().info.status == "FAILED"
    case.assert_contract_kept()


def describe(run: Any) -> str:
    """One pipeline run's MLflow record, as a reader of the run page sees it."""
    lines = [f"run {run.info.run_id} ({run.info.run_name}), status {run.info.status}", "", "params:"]
    lines += [f"  {key} = {value}" for key, value in sorted(run.data.params.items())]
    lines += ["", "metrics:"] + [f"  {key} = {value:g}" for key, value in sorted(run.data.metrics.items())]
    lines += ["", "tags:"] + [
        f"  {key} = {value}" for key, value in sorted(run.data.tags.items()) if not key.startswith("mlflow.")
    ]
    lines += ["", "dataset inputs:"]
    for dataset_input in run.inputs.dataset_inputs:
        dataset = dataset_input.dataset
        context = {tag.key: tag.value for tag in dataset_input.tags}.get("mlflow.data.context")
        lines.append(f"  {dataset.name} digest={dataset.digest} source={dataset.source} context={context}")
        lines.append(f"    profile={dataset.profile}")
    return "\n".join(lines) + "\n"
