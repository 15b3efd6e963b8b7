"""evaluate-business: scoring rules and the chat requests sent to NIM."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps.evaluate_business import main, parse_json_object, score, token_f1


def test_parse_json_object_accepts_fenced_json_only_objects() -> None:
    assert parse_json_object('```json\n{"bill_found": "false"}\n```') == {"bill_found": "false"}
    assert parse_json_object(' {"a": 1} ') == {"a": 1}
    assert parse_json_object("[1, 2]") is None
    assert parse_json_object('Sure! {"a": 1}') is None


def test_score_exact_match_json_validity_and_field_accuracy() -> None:
    metrics = score(
        [
            ('{"bill_found": "false", "reason": "no bill"}', '{"bill_found": false, "reason": "No  bill"}'),
            ('{"bill_found": "true", "reason": "paid"}', '{"bill_found": "true", "reason": "overdue"}'),
            ('{"bill_found": "true"}', "I could not find it."),
            ("Your plan renews in May.", "your plan renews in may."),
        ]
    )
    assert metrics == {
        "examples": 4,
        "exact_match": pytest.approx(1 / 4),
        "f1": pytest.approx(fmean(metrics["per_example"]["f1"])),
        "json_valid_rate": pytest.approx(2 / 3),
        "json_field_accuracy": pytest.approx(3 / 5),
        "per_example": {"f1": metrics["per_example"]["f1"], "exact_match": [0.0, 0.0, 0.0, 1.0]},
    }


def test_score_without_json_references_reports_overlap_and_exact_match() -> None:
    assert score([("a", "a"), ("b", "c")]) == {
        "examples": 2,
        "f1": 0.5,
        "exact_match": 0.5,
        "per_example": {"f1": [1.0, 0.0], "exact_match": [1.0, 0.0]},
    }


@pytest.mark.parametrize(
    ("reference", "answer", "expected"),
    [
        ("Your plan renews in May.", "The plan renews in May", 8 / 9),
        ("Roaming charges were added.", "roaming charges were added", 1.0),
        ("Roaming charges were added.", "Sorry, I cannot help with that.", 0.0),
        ("", "", 1.0),
    ],
)
def test_token_f1_credits_a_prose_answer_by_its_overlap(reference: str, answer: str, expected: float) -> None:
    # SQuAD's normalization: case, punctuation and articles do not count.
    assert token_f1(reference, answer) == pytest.approx(expected)


def test_main_queries_nim_without_the_reference(httpserver, tmp_path: Path) -> None:
    test_file = tmp_path / "testing.jsonl"
    examples = [
        {
            "messages": [
                {"role": "system", "content": "Answer in JSON."},
                {"role": "user", "content": f"Is there a bill for <ACCOUNT_{i}>?"},
                {"role": "assistant", "content": '{"bill_found": "false"}'},
            ]
        }
        for i in range(3)
    ]
    test_file.write_text("".join(json.dumps(example) + "\n" for example in examples))
    answers = iter(['{"bill_found": "false"}', '{"bill_found": "true"}', "no idea"])

    def complete(request: Request) -> Response:
        body = {"choices": [{"message": {"role": "assistant", "content": next(answers)}}]}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(complete)
    argv = [
        "--model", "llmops/care-lora@cust-1", "--test-file", str(test_file), "--max-tokens", "64",
        "--nim-url", httpserver.url_for("/"), "--output-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(argv) == 0

    first = httpserver.log[0][0].get_json()
    assert first == {
        "model": "llmops/care-lora@cust-1",
        "messages": examples[0]["messages"][:2],
        "max_tokens": 64,
        "temperature": 0.0,
    }
    metrics = json.loads((tmp_path / "out/metrics").read_text())
    assert metrics["examples"] == 3 and metrics["per_example"]["exact_match"] == [1.0, 0.0, 0.0]
    assert metrics["json_valid_rate"] == pytest.approx(2 / 3)
    assert metrics["json_field_accuracy"] == pytest.approx(1 / 3)
