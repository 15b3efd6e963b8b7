"""LLM-as-a-judge: rate a model's answers against human references for correctness, relevance, fluency.

The model under test answers each test question through NIM; a judge model rates each answer 1-5 per
criterion. The judge must be served by the judge endpoint (checked before judging). The platform never makes
the candidate its own judge (registration refuses it); a stack may let the served base model judge, which then
grades its own answers too: the step allows that, warns, and marks the scores `self_judged`, since a judge's
preference for its own answers favours the base and so only makes the gate stricter. Replies are parsed leniently:
a JSON object (possibly fenced or wrapped in prose), else "criterion: score" text. Unparseable replies
are counted, not guessed; per-example scores go to the gate, which compares base and candidate pairwise.
With an Evaluator URL and the test file's Data Store URL, the same rating also runs as an Evaluator `custom`
job with an `llm-judge` metric whose model is the judge (see _evaluator_jobs); its aggregate scores are added
under "evaluator" and its id is the `evaluator-job` output. The gate decides on the step's per-example scores.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from pipelines.steps._chat import Example, client_for, complete, served_models
from pipelines.steps._common import StepError, add_service_url, env, parser_for, write_outputs
from pipelines.steps._evaluator_jobs import (
    EvaluatorJob,
    judge_config,
    parse_with_test_split,
    score_beside_evaluator,
)
from pipelines.steps._http import ServiceClient

log = logging.getLogger(__name__)

CRITERIA = ("correctness", "relevance", "fluency")

JUDGE_SYSTEM_PROMPT = (
    "You are a strict evaluator of customer care answers. Compare the candidate answer with the "
    "reference answer written by a human expert and rate it from 1 (worst) to 5 (best) on:\n"
    "- correctness: the facts and decisions agree with the reference;\n"
    "- relevance: it answers the question that was asked, without digressions;\n"
    "- fluency: it is clear, grammatical and well formed.\n"
    'Reply with only a JSON object: {"correctness": <1-5>, "relevance": <1-5>, "fluency": <1-5>}.'
)

_OBJECT = re.compile(r"\{[^{}]*\}")
_SCORE = {name: re.compile(rf"{name}\W{{0,10}}([1-5](?:\.\d+)?)", re.IGNORECASE) for name in CRITERIA}


def judge_messages(example: Example, answer: str) -> list[dict[str, str]]:
    prompt = f"QUESTION:\n{example.question}\n\nREFERENCE ANSWER:\n{example.reference}\n\nCANDIDATE ANSWER:\n{answer}"
    return [{"role": "system", "content": JUDGE_SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def _in_range(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= 5 else None


def parse_verdict(reply: str) -> dict[str, float] | None:
    """Scores for every criterion, or None when the reply does not give all three in range."""
    for candidate in _OBJECT.findall(reply):
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        lowered = {str(key).lower(): value for key, value in data.items()}
        scores = {name: _in_range(lowered.get(name)) for name in CRITERIA}
        if all(value is not None for value in scores.values()):
            return {name: float(value) for name, value in scores.items() if value is not None}
    matches = {name: pattern.search(reply) for name, pattern in _SCORE.items()}
    if all(matches.values()):
        return {name: float(match.group(1)) for name, match in matches.items() if match}
    return None


def aggregate(verdicts: Sequence[dict[str, float] | None]) -> dict[str, Any]:
    parsed = [verdict for verdict in verdicts if verdict is not None]
    if not parsed:
        raise StepError(f"the judge gave no usable verdict in {len(verdicts)} replies")
    summary: dict[str, Any] = {name: fmean(v[name] for v in parsed) for name in CRITERIA}
    summary["judged"] = len(parsed)
    summary["parse_failures"] = len(verdicts) - len(parsed)
    summary["per_example"] = {name: [v[name] if v else None for v in verdicts] for name in CRITERIA}
    return summary


def check_judge(judge: ServiceClient, *, judge_url: str, judge_model: str, model: str) -> None:
    if judge_model == model:
        log.warning("%s judges its own answers: its scores lean in its favour (marked self_judged)", model)
    served = served_models(judge)
    if judge_model not in served:
        raise StepError(f"{judge_url} does not serve the judge model {judge_model} (it serves {sorted(served)})")


def run(examples: Sequence[Example], args: argparse.Namespace) -> dict[str, Any]:
    """The judge's verdicts on the answers of `args.model` (served at `args.nim_url`) to `examples`."""
    model, judge_model, judge_url, max_tokens = args.model, args.judge_model, args.judge_url, args.max_tokens
    verdicts = []
    with client_for(args.nim_url) as nim, client_for(judge_url, api_key_env="JUDGE_API_KEY") as judge:
        check_judge(judge, judge_url=judge_url, judge_model=judge_model, model=model)
        for example in examples:
            answer = complete(nim, model, example.messages, max_tokens=max_tokens)
            reply = complete(judge, judge_model, judge_messages(example, answer), max_tokens=256)
            verdict = parse_verdict(reply)
            if verdict is None:
                log.warning("unparseable judge reply: %.200s", reply)
            verdicts.append(verdict)
    summary = aggregate(verdicts)
    if judge_model == model:
        summary["self_judged"] = True
    return summary


def main(argv: Sequence[str]) -> int:
    parser = parser_for("judge", "Rate answers against human references with an LLM judge.")
    parser.add_argument("--model", required=True, help="model id as NIM serves it (base model or adapter)")
    parser.add_argument("--judge-model", required=True)
    parser.add_argument("--test-file", type=Path, required=True, help="chat-schema JSONL, e.g. testing.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="judge only the first N examples (0: all)")
    parser.add_argument("--max-tokens", type=int, default=512)
    add_service_url(parser, "--nim-url", "NIM_URL", "NIM serving the model under test")
    add_service_url(parser, "--judge-url", "JUDGE_URL", "OpenAI-compatible judge endpoint (key: $JUDGE_API_KEY)")
    parser.add_argument(
        "--evaluator-judge-url",
        default=env("EVALUATOR_JUDGE_URL"),
        help="judge base URL as the Evaluator reaches it (default: $EVALUATOR_JUDGE_URL, else --judge-url)",
    )
    args, examples = parse_with_test_split(parser, argv)
    job = EvaluatorJob.from_args(
        args,
        kind="judge",
        config=lambda files_url: judge_config(
            files_url,
            limit=args.limit,
            max_tokens=args.max_tokens,
            judge_url=args.evaluator_judge_url or args.judge_url,
            judge_model=args.judge_model,
            system_prompt=JUDGE_SYSTEM_PROMPT,
            criteria=CRITERIA,
        ),
    )
    scores = score_beside_evaluator(
        job,
        lambda: run(examples, args),
        # After the in-step run, which checks that the judge serves its model.
        submit_first=False,
    )
    log.info("judge scores for %s: %s", args.model, {k: v for k, v in scores.items() if k != "per_example"})
    write_outputs(args.output_dir, {"scores": scores, "evaluator-job": job.job_id if job else ""})
    return 0
