"""judge: robust parsing of the judge's replies and the requests to NIM and the judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps._common import StepError
from pipelines.steps.judge import aggregate, main, parse_verdict

FULL = {"correctness": 4.0, "relevance": 5.0, "fluency": 3.0}


@pytest.mark.parametrize(
    "reply",
    [
        '{"correctness": 4, "relevance": 5, "fluency": 3}',
        '```json\n{"Correctness": "4", "Relevance": 5, "Fluency": 3.0}\n```',
        'Here is my rating: {"correctness": 4, "relevance": 5, "fluency": 3} -- the answer is decent.',
        '{"note": "draft"} then {"correctness": 4, "relevance": 5, "fluency": 3}',
        "Correctness: 4/5\nRelevance - 5\nFluency: 3",
        "**correctness**: 4, **relevance**: 5, **fluency**: 3",
    ],
)
def test_parse_verdict_accepts_common_reply_shapes(reply: str) -> None:
    assert parse_verdict(reply) == FULL


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I cannot judge this.",
        '{"correctness": 4, "relevance": 5}',
        '{"correctness": 7, "relevance": 5, "fluency": 3}',
        '{"correctness": "good", "relevance": 5, "fluency": 3}',
        "correctness: 0, relevance: 5, fluency: 3",
    ],
)
def test_parse_verdict_rejects_incomplete_or_out_of_range_replies(reply: str) -> None:
    assert parse_verdict(reply) is None


def test_aggregate_averages_and_counts_failures() -> None:
    summary = aggregate([FULL, None, {"correctness": 2.0, "relevance": 3.0, "fluency": 5.0}])
    assert summary == {"correctness": 3.0, "relevance": 4.0, "fluency": 4.0, "judged": 2, "parse_failures": 1}
    with pytest.raises(StepError, match="no usable verdict"):
        aggregate([None, None])


def test_main_asks_the_model_then_the_judge(httpserver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_API_KEY", "secret-key")
    test_file = tmp_path / "testing.jsonl"
    example = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Why is my bill higher?"},
            {"role": "assistant", "content": "Roaming charges were added."},
        ]
    }
    test_file.write_text(json.dumps(example) + "\n")

    def complete(request: Request) -> Response:
        body = request.get_json()
        content = (
            "You roamed abroad." if body["model"] == "base" else '{"correctness": 4, "relevance": 4, "fluency": 5}'
        )
        return Response(json.dumps({"choices": [{"message": {"content": content}}]}), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(complete)
    url = httpserver.url_for("/")
    argv = [
        "--model", "base", "--judge-model", "judge", "--test-file", str(test_file), "--nim-url", url,
        "--judge-url", url, "--output-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(argv) == 0

    (model_request, _), (judge_request, _) = httpserver.log
    assert model_request.get_json()["messages"] == example["messages"][:2]
    assert "Authorization" not in model_request.headers
    assert judge_request.headers["Authorization"] == "Bearer secret-key"
    judge_prompt = judge_request.get_json()["messages"][1]["content"]
    assert "Why is my bill higher?" in judge_prompt
    assert "Roaming charges were added." in judge_prompt
    assert "You roamed abroad." in judge_prompt
    assert json.loads((tmp_path / "out/scores").read_text()) == {
        "correctness": 4.0,
        "relevance": 4.0,
        "fluency": 5.0,
        "judged": 1,
        "parse_failures": 0,
    }
