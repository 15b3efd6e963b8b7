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


def judge_argv(model: str, judge_model: str, *, test_file: Path, url: str, out: Path) -> list[str]:
    """The step's arguments with the model under test and the judge served at the same `url`."""
    return [
        "--model", model, "--judge-model", judge_model, "--test-file", str(test_file), "--nim-url", url,
        "--judge-url", url, "--output-dir", str(out),
    ]  # fmt: skip


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
    assert summary == {
        "correctness": 3.0,
        "relevance": 4.0,
        "fluency": 4.0,
        "judged": 2,
        "parse_failures": 1,
        # Per example, so the gate can compare base and candidate on the same questions.
        "per_example": {"correctness": [4.0, None, 2.0], "relevance": [5.0, None, 3.0], "fluency": [3.0, None, 5.0]},
    }
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

    httpserver.expect_request("/v1/models", method="GET").respond_with_json({"data": [{"id": "judge"}]})
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(complete)
    url = httpserver.url_for("/")
    argv = judge_argv("base", "judge", test_file=test_file, url=url, out=tmp_path / "out")
    assert main(argv) == 0

    (listing, _), (model_request, _), (judge_request, _) = httpserver.log
    assert listing.path == "/v1/models"
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
        "per_example": {"correctness": [4.0], "relevance": [4.0], "fluency": [5.0]},
    }


@pytest.mark.parametrize(
    ("model", "served", "problem"),
    [("base", ["base"], r"does not serve the judge model judge \(it serves \['base'\]\)")],
)
def test_the_judge_is_a_served_model(httpserver, tmp_path: Path, model: str, served: list[str], problem: str) -> None:
    test_file = tmp_path / "testing.jsonl"
    example = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    test_file.write_text(json.dumps(example) + "\n")
    httpserver.expect_request("/v1/models").respond_with_json({"data": [{"id": name} for name in served]})
    url = httpserver.url_for("/")
    argv = judge_argv(model, "judge", test_file=test_file, url=url, out=tmp_path / "out")
    with pytest.raises(StepError, match=problem):
        main(argv)
    assert all(request.path == "/v1/models" for request, _ in httpserver.log)


def test_a_base_model_judging_itself_is_marked(httpserver, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    test_file = tmp_path / "testing.jsonl"
    example = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    test_file.write_text(json.dumps(example) + "\n")
    verdict = '{"correctness": 5, "relevance": 5, "fluency": 5}'
    httpserver.expect_request("/v1/models").respond_with_json({"data": [{"id": "base"}]})
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"choices": [{"message": {"content": verdict}}]}
    )
    url = httpserver.url_for("/")
    argv = judge_argv("base", "base", test_file=test_file, url=url, out=tmp_path / "out")
    assert main(argv) == 0
    assert json.loads((tmp_path / "out/scores").read_text())["self_judged"] is True
    assert "base judges its own answers" in caplog.text
