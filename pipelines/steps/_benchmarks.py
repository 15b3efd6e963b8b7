"""The regression benchmarks NeMo Evaluator 25.8 can run, and the evaluation config of each.

Two kinds, as Evaluator 25.8 offers them:
  LM Harness types   the `config.type`s of nvidia-lm-eval 25.8, the harness Evaluator 25.8 runs, read from
                     facts/evaluator-25.8-benchmarks.json (tools/derive_evaluator_benchmarks.py); e.g. gsm8k.
  custom suites      SQuAD, TriviaQA, GLUE and SuperGLUE, which that harness lacks: `custom` evaluation jobs
                     (https://docs.nvidia.com/nemo/microservices/25.8.0/evaluate/evaluation-custom.html) over
                     datasets that prepare-benchmarks builds from the official distribution files and uploads
                     to the Data Store. Scored with the custom metrics `string-check` (exact match, label
                     accuracy) and `f1` (token overlap with the reference answer).
This module imports nothing beyond the standard library, so the platform program can check benchmark names
at registration with the same list the steps use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

EVALUATOR_VERSION = "25.8"
FACT_FILE = Path(__file__).resolve().parents[2] / "facts" / f"evaluator-{EVALUATOR_VERSION}-benchmarks.json"
ENDPOINT_PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
# Near-zero rather than zero: the Evaluator rejects temperature 0.0.
GREEDY = {"temperature": 0.00001, "top_p": 0.00001}


@dataclass(frozen=True)
class CustomTask:
    """One task of a custom suite: where its source file sits in the sources repo and how it is scored."""

    name: str
    source: str
    kind: str  # "qa" (free-text answer) or "label" (one of a few words)
    match: str = "equals"  # string-check operation between the normalized answer and the reference


CUSTOM_SUITES: dict[str, tuple[CustomTask, ...]] = {
    "squad": (CustomTask("squad", "squad/dev-v2.0.json", "qa"),),
    # TriviaQA answers come with aliases and models answer in sentences: containment of the answer is the
    # usual generative exact match for it.
    "triviaqa": (CustomTask("triviaqa", "triviaqa/verified-web-dev.json", "qa", match="contains"),),
    "glue": (
        CustomTask("sst2", "glue/SST-2/dev.tsv", "label"),
        CustomTask("mrpc", "glue/MRPC/dev.tsv", "label"),
        CustomTask("rte", "glue/RTE/dev.tsv", "label"),
    ),
    "superglue": (
        CustomTask("boolq", "superglue/BoolQ/val.jsonl", "label"),
        CustomTask("cb", "superglue/CB/val.jsonl", "label"),
    ),
}
NORMALIZED_ANSWER = "{{ sample.output_text | trim | lower | replace('.', '') }}"


class UnknownBenchmark(ValueError):
    """A benchmark name that Evaluator 25.8 cannot run."""


@cache
def lm_harness_types() -> dict[str, dict[str, Any]]:
    facts: dict[str, Any] = json.loads(FACT_FILE.read_text(encoding="utf-8"))
    types: dict[str, dict[str, Any]] = facts["lm_harness"]
    return types


def parse_benchmarks(text: str) -> list[str]:
    """Comma-separated benchmark names, each an LM Harness type or a custom suite; unknown names refused."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UnknownBenchmark("no benchmark named")
    if unknown := [name for name in names if name not in CUSTOM_SUITES and name not in lm_harness_types()]:
        raise UnknownBenchmark(
            f"{', '.join(unknown)}: not an evaluation type of NeMo Evaluator {EVALUATOR_VERSION} "
            f"(LM Harness types are listed in {FACT_FILE.name}; custom suites: {', '.join(CUSTOM_SUITES)})"
        )
    return names


def custom_suites(names: Iterable[str]) -> list[str]:
    return [name for name in names if name in CUSTOM_SUITES]


def target(nim_url: str, model: str, endpoint: str) -> dict[str, Any]:
    """The model under evaluation, as the Evaluator reaches it through NIM."""
    url = nim_url.rstrip("/") + ENDPOINT_PATHS[endpoint]
    return {"type": "model", "model": {"api_endpoint": {"url": url, "model_id": model, "format": "nim"}}}


def lm_harness_config(benchmark: str, *, endpoint: str, limit_samples: int) -> dict[str, Any]:
    supported = lm_harness_types()[benchmark]["endpoints"]
    if endpoint not in supported:
        raise UnknownBenchmark(f"{benchmark} runs against {' or '.join(supported)} endpoints, not {endpoint}")
    params: dict[str, Any] = dict(GREEDY)
    if limit_samples > 0:
        params["limit_samples"] = limit_samples
    return {"type": benchmark, "params": params}


def _metrics(task: CustomTask) -> dict[str, Any]:
    if task.kind == "label":
        check = [NORMALIZED_ANSWER, "equals", "{{ item.label }}"]
        return {"accuracy": {"type": "string-check", "params": {"check": check}}}
    check = [NORMALIZED_ANSWER, task.match, "{{ item.answer | trim | lower | replace('.', '') }}"]
    return {
        "exact_match": {"type": "string-check", "params": {"check": check}},
        "f1": {"type": "f1", "params": {"ground_truth": "{{ item.answer }}"}},
    }


def custom_config(suite: str, files: Mapping[str, str], *, endpoint: str) -> dict[str, Any]:
    """A `custom` evaluation over the prepared files of one suite: task name -> hf:// files URL."""
    tasks = {}
    for task in CUSTOM_SUITES[suite]:
        if task.name not in files:
            raise UnknownBenchmark(f"prepare-benchmarks prepared no {suite} task {task.name}")
        max_tokens = 8 if task.kind == "label" else 32
        if endpoint == "chat":
            template: dict[str, Any] = {"messages": [{"role": "user", "content": "{{ item.prompt }}"}]}
        else:
            template = {"prompt": "{{ item.prompt }}"}
        tasks[task.name] = {
            "type": "chat-completion" if endpoint == "chat" else "completion",
            "dataset": {"files_url": files[task.name]},
            "params": {"template": {**template, "max_tokens": max_tokens, **GREEDY}},
            "metrics": _metrics(task),
        }
    return {"type": "custom", "tasks": tasks}
