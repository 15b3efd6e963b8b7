"""Score a model on the business test split through NIM's OpenAI-compatible chat API.

Metrics, each in [0, 1]:
  exact_match          answer equals the reference (case and whitespace normalized)
  json_valid_rate      of the examples whose reference is a JSON object, the share answered with one
  json_field_accuracy  of the fields in those references, the share answered with the same value;
                       values compare as lower-cased strings, so {"bill_found": "false"} matches false
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.steps._chat import Example, client_for, complete, load_examples
from pipelines.steps._common import add_output_dir, add_service_url, parser_for, write_outputs

log = logging.getLogger(__name__)

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


def normalize(text: str) -> str:
    return " ".join(text.split()).lower()


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


def score(pairs: Sequence[tuple[str, str]]) -> dict[str, float | int]:
    """Metrics over (reference, answer) pairs."""
    exact = 0
    json_examples = json_valid = fields = fields_correct = 0
    for reference, answer in pairs:
        exact += normalize(reference) == normalize(answer)
        expected = parse_json_object(reference)
        if expected is None:
            continue
        json_examples += 1
        actual = parse_json_object(answer)
        json_valid += actual is not None
        fields += len(expected)
        fields_correct += sum(
            actual is not None and key in actual and _same_value(value, actual[key]) for key, value in expected.items()
        )
    metrics: dict[str, float | int] = {"examples": len(pairs), "exact_match": exact / len(pairs)}
    if json_examples:
        metrics["json_valid_rate"] = json_valid / json_examples
        metrics["json_field_accuracy"] = fields_correct / fields if fields else 0.0
    return metrics


def evaluate(nim_url: str, model: str, examples: Sequence[Example], max_tokens: int) -> dict[str, float | int]:
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
    add_output_dir(parser)
    args = parser.parse_args(argv)

    metrics = evaluate(args.nim_url, args.model, load_examples(args.test_file, args.limit), args.max_tokens)
    log.info("business metrics for %s: %s", args.model, metrics)
    write_outputs(args.output_dir, {"metrics": metrics})
    return 0
