"""Score a model on the business test split through NIM's OpenAI-compatible chat API.

Metrics, each a mean over the test examples in [0, 1], with the per-example values the gate resamples:
  f1                   token overlap with the reference (SQuAD's answer normalization: lower case, no
                       punctuation or articles): the default gate metric, fair to prose answers
  exact_match          answer equals the reference (case and whitespace normalized)
  json_valid_rate      of the examples whose reference is a JSON object, the share answered with one
  json_field_accuracy  of the fields in those references, the share answered with the same value;
                       values compare as lower-cased strings, so {"bill_found": "false"} matches false
With an Evaluator URL and the test file's Data Store URL, the same split is also scored by an Evaluator
`custom` job (f1 and string-check metrics, see _evaluator_jobs); its aggregate scores are added under
"evaluator" and its id is the `evaluator-job` output. The gate decides on the step's per-example values.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

from pipelines.steps._chat import Example, client_for, complete
from pipelines.steps._common import add_service_url, parser_for, write_outputs
from pipelines.steps._evaluator_jobs import (
    EvaluatorJob,
    business_config,
    parse_with_test_split,
    score_beside_evaluator,
)

log = logging.getLogger(__name__)

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    return " ".join(text.split()).lower()


def answer_tokens(text: str) -> list[str]:
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split()


def token_f1(reference: str, answer: str) -> float:
    expected, actual = answer_tokens(reference), answer_tokens(answer)
    if not expected or not actual:
        return float(expected == actual)
    common = sum((Counter(expected) & Counter(actual)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(actual), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The answer as a JSON object, tolerating a Markdown code fence around it; None otherwise."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    try:
        value = json.loads(fenced.group(1) if fenced else stripped)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _same_value(expected: Any, actual: Any) -> bool:
    return normalize(str(expected)) == normalize(str(actual))


def score(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Metrics over (reference, answer) pairs, with each example's values under "per_example"."""
    per_example: dict[str, list[float]] = {"f1": [], "exact_match": []}
    json_valid: list[float] = []
    fields = fields_correct = 0
    for reference, answer in pairs:
        per_example["f1"].append(token_f1(reference, answer))
        per_example["exact_match"].append(float(normalize(reference) == normalize(answer)))
        expected = parse_json_object(reference)
        if expected is None:
            continue
        actual = parse_json_object(answer)
        json_valid.append(float(actual is not None))
        fields += len(expected)
        fields_correct += sum(
            actual is not None and key in actual and _same_value(value, actual[key]) for key, value in expected.items()
        )
    metrics: dict[str, Any] = {"examples": len(pairs)}
    metrics.update({name: fmean(values) for name, values in per_example.items()})
    if json_valid:
        metrics["json_valid_rate"] = fmean(json_valid)
        metrics["json_field_accuracy"] = fields_correct / fields if fields else 0.0
    metrics["per_example"] = per_example
    return metrics


def evaluate(nim_url: str, model: str, examples: Sequence[Example], max_tokens: int) -> dict[str, Any]:
    with client_for(nim_url) as nim:
        pairs = [
            (example.reference, complete(nim, model, example.messages, max_tokens=max_tokens)) for example in examples
        ]
    return score(pairs)


def main(argv: Sequence[str]) -> int:
    parser = parser_for("evaluate-business", "Score business accuracy on the test split.")
    parser.add_argument("--model", required=True, help="model id as NIM serves it (base model or adapter)")
    parser.add_argument("--test-file", type=Path, required=True, help="chat-schema JSONL, e.g. testing.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="score only the first N examples (0: all)")
    parser.add_argument("--max-tokens", type=int, default=512)
    add_service_url(parser, "--nim-url", "NIM_URL", "NIM")
    args, examples = parse_with_test_split(parser, argv)
    # Submitted first, so the Evaluator works while the step scores; the gate decides on the step's scores.
    job = EvaluatorJob.from_args(
        args,
        kind="business",
        config=lambda files_url: business_config(files_url, limit=args.limit, max_tokens=args.max_tokens),
    )
    metrics = score_beside_evaluator(
        job, lambda: evaluate(args.nim_url, args.model, examples, args.max_tokens), submit_first=True
    )
    log.info("business metrics for %s: %s", args.model, {k: v for k, v in metrics.items() if k != "per_example"})
    write_outputs(args.output_dir, {"metrics": metrics, "evaluator-job": job.job_id if job else ""})
    return 0
