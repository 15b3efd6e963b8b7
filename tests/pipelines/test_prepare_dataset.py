"""prepare-dataset: anonymization, chat formatting, deterministic hash split, stats and lineage hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.steps._common import StepError
from pipelines.steps.prepare_dataset import SPLIT_FILES, anonymize, assign_split, main, placeholder

SALT = b"test-salt"


def test_anonymizes_emails_phones_and_account_ids_with_stable_placeholders() -> None:
    text = (
        "Contact Jane.Doe@Example.com or +1 (555) 123-4567 about ACC-00123456; "
        "jane.doe@example.com also called 555.123.4567 for acct 00123456."
    )
    clean, found = anonymize(text, SALT)
    assert found == {"EMAIL": 2, "PHONE": 2, "ACCOUNT": 2}
    email, phone, account = (
        placeholder("EMAIL", "jane.doe@example.com", SALT),
        placeholder("PHONE", "15551234567", SALT),
        placeholder("ACCOUNT", "00123456", SALT),
    )
    # Same person, same placeholder, whatever the spelling.
    assert clean.count(email) == 2
    assert clean.count(account) == 2
    assert phone in clean
    assert placeholder("PHONE", "5551234567", SALT) in clean
    assert "@" not in clean and "555" not in clean and "00123456" not in clean


def test_keeps_dates_amounts_and_short_numbers() -> None:
    text = "On 2024-01-15 your bill of $1,234.56 for plan 42 was due; ticket 12345678."
    assert anonymize(text, SALT) == (text, {})


def test_placeholders_depend_on_the_salt() -> None:
    assert placeholder("EMAIL", "a@b.co", b"one") != placeholder("EMAIL", "a@b.co", b"two")


def test_split_is_deterministic_by_seed_and_independent_of_other_records() -> None:
    keys = [f"record-{i}" for i in range(2000)]
    first = {key: assign_split(key, 7, 0.8, 0.1) for key in keys}
    assert first == {key: assign_split(key, 7, 0.8, 0.1) for key in reversed(keys)}
    assert first != {key: assign_split(key, 8, 0.8, 0.1) for key in keys}
    shares = {split: list(first.values()).count(split) / len(keys) for split in SPLIT_FILES}
    assert shares["training"] == pytest.approx(0.8, abs=0.04)
    assert shares["validation"] == pytest.approx(0.1, abs=0.03)


def _write_raw(path: Path, count: int, extra_lines: tuple[str, ...] = ()) -> None:
    lines = [
        json.dumps(
            {
                "id": f"t{i}",
                "prompt": f"Customer {i} (mail c{i}@corp.example) asks: is my bill for ACC-{100000 + i} ready?",
                "completion": json.dumps({"bill_found": "true" if i % 2 else "false"}),
            }
        )
        for i in range(count)
    ]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")


def _run(tmp_path: Path, raw: Path, out: str, *extra: str) -> Path:
    output_dir = tmp_path / out
    assert main(["--input", str(raw), "--seed", "3", "--salt", "s", "--output-dir", str(output_dir), *extra]) == 0
    return output_dir


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_main_writes_chat_files_stats_and_hash(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    _write_raw(raw, 60, extra_lines=('{"prompt": "no completion"}', "not json"))
    output_dir = _run(tmp_path, raw, "out", "--system-prompt", "Be brief.")

    stats = json.loads((output_dir / "stats").read_text())
    assert stats["records"] == 60
    assert stats["skipped_records"] == 2
    assert stats["records_with_pii"] == 60
    assert stats["pii_replacements"] == {"email": 60, "account": 60, "phone": 0}
    assert sum(stats["splits"].values()) == 60

    examples = {split: _read(output_dir / "dataset" / relative) for split, relative in SPLIT_FILES.items()}
    assert {split: len(rows) for split, rows in examples.items()} == stats["splits"]
    first = examples["training"][0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[0]["content"] == "Be brief."
    assert "@" not in first[1]["content"] and "<EMAIL_" in first[1]["content"]
    assert json.loads(first[2]["content"]) in ({"bill_found": "true"}, {"bill_found": "false"})

    dataset_hash = (output_dir / "dataset-hash").read_text()
    assert len(dataset_hash) == 64
    assert (_run(tmp_path, raw, "again", "--system-prompt", "Be brief.") / "dataset-hash").read_text() == dataset_hash


def test_adding_records_keeps_existing_assignments_and_changes_the_hash(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    _write_raw(raw, 40)
    before = _run(tmp_path, raw, "before")
    _write_raw(raw, 50)
    after = _run(tmp_path, raw, "after")
    for relative in SPLIT_FILES.values():
        old = _read(before / "dataset" / relative)
        assert _read(after / "dataset" / relative)[: len(old)] == old
    assert (before / "dataset-hash").read_text() != (after / "dataset-hash").read_text()


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    _write_raw(raw, 2)
    with pytest.raises(StepError, match="empty"):
        main(["--input", str(raw), "--output-dir", str(tmp_path / "out")])


def test_main_downloads_the_raw_records_with_the_gateway_key(httpserver, tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("pytest_httpserver")
    monkeypatch.setenv("GATEWAY_API_KEY", "k-1")
    records = "".join(
        json.dumps({"id": str(i), "prompt": f"question {i}", "completion": f"answer {i}"}) + "\n" for i in range(40)
    )
    httpserver.expect_request(
        "/v1/hf/datasets/llmops/care-raw/resolve/main/records.jsonl", headers={"x-api-key": "k-1"}
    ).respond_with_data(records)
    argv = [
        "--raw-records-repo", "llmops/care-raw", "--datastore-url", httpserver.url_for("/"),
        "--output-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((tmp_path / "out/stats").read_text())["records"] == 40
