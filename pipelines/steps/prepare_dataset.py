"""Turn raw prompt/completion records into anonymized NeMo Customizer chat files, split by hash.

Raw input is JSONL, one object per line: {"id": optional, "prompt": str, "completion": str,
"system": optional}, read from a Data Store dataset repo with the gateway credentials (or a
local file). Output follows the Customizer chat schema, one
{"messages": [{"role": "system"|"user"|"assistant", "content": ...}]} per line
(https://docs.nvidia.com/nemo/microservices/25.8.0/fine-tune/tutorials/format-training-dataset.html),
laid out as the training/, validation/ and testing/ folders the dataset repository expects.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.steps._common import (
    StepError,
    add_output_dir,
    dumps,
    env,
    jsonl_bytes,
    parser_for,
    read_jsonl,
    write_outputs,
)
from pipelines.steps._http import ServiceClient
from pipelines.steps.upload_dataset import RepoFile, content_hash, download

log = logging.getLogger(__name__)

SPLIT_FILES = {
    "training": "training/training.jsonl",
    "validation": "validation/validation.jsonl",
    "testing": "testing/testing.jsonl",
}

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Account ids as the billing systems print them: ACC/ACCT, an optional separator, 6-12 digits.
ACCOUNT_ID = re.compile(r"\b(?:ACCT|ACC)[-_ ]?\d{6,12}\b", re.IGNORECASE)
# 9-15 digits (E.164 allows 15) with single separators; dates and amounts have fewer digits.
PHONE = re.compile(r"(?<![\w<])\+?\(?\d(?:[\s().-]{0,2}\d){8,14}(?![\w>])")


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


# Order matters: an email or an account id contains digits that the phone pattern would eat.
PII_KINDS: tuple[tuple[str, re.Pattern[str], Callable[[str], str]], ...] = (
    ("EMAIL", EMAIL, str.lower),
    ("ACCOUNT", ACCOUNT_ID, _digits),
    ("PHONE", PHONE, _digits),
)


def placeholder(kind: str, value: str, salt: bytes) -> str:
    """Same value, same placeholder: the model still sees that two mentions are one customer."""
    digest = hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:8]
    return f"<{kind}_{digest}>"


def anonymize(text: str, salt: bytes) -> tuple[str, Counter[str]]:
    found: Counter[str] = Counter()
    for kind, pattern, normalize in PII_KINDS:

        def replace(match: re.Match[str], kind: str = kind, normalize: Callable[[str], str] = normalize) -> str:
            found[kind] += 1
            return placeholder(kind, normalize(match.group()), salt)

        text = pattern.sub(replace, text)
    return text, found


def assign_split(key: str, seed: int, train_fraction: float, validation_fraction: float) -> str:
    """Place a record by the hash of its key alone, so adding records never moves existing ones."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < train_fraction:
        return "training"
    if position < train_fraction + validation_fraction:
        return "validation"
    return "testing"


def record_key(record: dict[str, Any]) -> str:
    if record.get("id") not in (None, ""):
        return str(record["id"])
    return hashlib.sha256(dumps(record).encode()).hexdigest()


def to_chat_example(record: dict[str, Any], system_prompt: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": record.get("system") or system_prompt},
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["completion"]},
        ]
    }


def _valid(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(key), str) and record[key].strip() for key in ("prompt", "completion"))
        and isinstance(record.get("system", ""), str)
    )


@dataclass
class Prepared:
    splits: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {name: [] for name in SPLIT_FILES})
    skipped_lines: list[int] = field(default_factory=list)
    pii_replacements: Counter[str] = field(default_factory=Counter)
    records_with_pii: int = 0


def prepare(
    lines: Iterable[tuple[int, str]],
    *,
    seed: int,
    train_fraction: float,
    validation_fraction: float,
    system_prompt: str,
    salt: bytes,
) -> Prepared:
    prepared = Prepared()
    for number, line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not _valid(record):
            prepared.skipped_lines.append(number)
            continue
        found: Counter[str] = Counter()
        clean = dict(record)
        for key in ("prompt", "completion", "system"):
            if key in clean:
                clean[key], counts = anonymize(clean[key], salt)
                found += counts
        prepared.pii_replacements += found
        prepared.records_with_pii += bool(found)
        split = assign_split(record_key(record), seed, train_fraction, validation_fraction)
        prepared.splits[split].append(to_chat_example(clean, system_prompt))
    return prepared


def write_dataset(prepared: Prepared, dataset_dir: Path) -> str:
    """Write the split files and return the dataset hash: upload_dataset.content_hash of them in SPLIT_FILES order."""
    files = [RepoFile(relative, jsonl_bytes(prepared.splits[split])) for split, relative in SPLIT_FILES.items()]
    for file in files:
        path = dataset_dir / file.path_in_repo
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(file.content)
    return content_hash(files)


def stats(prepared: Prepared) -> dict[str, Any]:
    counts = {split: len(examples) for split, examples in prepared.splits.items()}
    return {
        "records": sum(counts.values()),
        "splits": counts,
        "skipped_records": len(prepared.skipped_lines),
        "records_with_pii": prepared.records_with_pii,
        "pii_replacements": {kind.lower(): prepared.pii_replacements[kind] for kind, _, _ in PII_KINDS},
    }


def fetch_raw_records(args: argparse.Namespace, scratch: Path) -> Path:
    raw = scratch / "raw-records.jsonl"
    with ServiceClient(args.datastore_url, timeout=300.0) as datastore:
        raw.write_bytes(download(datastore, args.raw_records_repo, args.raw_records_file, args.raw_records_revision))
    log.info("downloaded %s/%s (%d bytes)", args.raw_records_repo, args.raw_records_file, raw.stat().st_size)
    return raw


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise ValueError(f"{value} is not between 0 and 1")
    return value


def main(argv: Sequence[str]) -> int:
    parser = parser_for("prepare-dataset", "Anonymize raw records, format them as chat examples and split them.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="raw JSONL records in a local file")
    source.add_argument("--raw-records-repo", help="Data Store dataset repo holding the raw JSONL, namespace/name")
    parser.add_argument("--raw-records-file", default="records.jsonl", help="file in --raw-records-repo")
    parser.add_argument("--raw-records-revision", default="main")
    parser.add_argument(
        "--datastore-url", default=env("DATASTORE_URL"), help="NeMo Data Store (default: $DATASTORE_URL)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--train-fraction", type=_fraction, default=0.8)
    parser.add_argument("--validation-fraction", type=_fraction, default=0.1)
    parser.add_argument("--system-prompt", default="You are a helpful customer care assistant.")
    parser.add_argument(
        "--salt",
        default=env("ANONYMIZATION_SALT", ""),
        help="secret mixed into placeholders so guesses cannot be hashed back (default: $ANONYMIZATION_SALT)",
    )
    add_output_dir(parser)
    args = parser.parse_args(argv)
    if args.train_fraction + args.validation_fraction >= 1:
        parser.error("--train-fraction + --validation-fraction must leave room for a test split")
    if args.raw_records_repo and not args.datastore_url:
        parser.error("--raw-records-repo needs --datastore-url or $DATASTORE_URL")
    with tempfile.TemporaryDirectory() as scratch:
        raw = fetch_raw_records(args, Path(scratch)) if args.raw_records_repo else args.input
        if not raw.is_file():
            raise StepError(f"raw records not found: {raw}")
        prepared = prepare(
            read_jsonl(raw),
            seed=args.seed,
            train_fraction=args.train_fraction,
            validation_fraction=args.validation_fraction,
            system_prompt=args.system_prompt,
            salt=args.salt.encode(),
        )
    summary = stats(prepared)
    if prepared.skipped_lines:
        log.warning(
            "skipped %d invalid records, first lines: %s",
            len(prepared.skipped_lines),
            prepared.skipped_lines[:10],
        )
    empty = [split for split, count in summary["splits"].items() if count == 0]
    if empty:
        raise StepError(f"split(s) {', '.join(empty)} are empty; need more records ({summary})")
    dataset_hash = write_dataset(prepared, args.output_dir / "dataset")
    log.info("prepared dataset %s: %s", dataset_hash, dumps(summary))
    write_outputs(args.output_dir, {"stats": summary, "dataset-hash": dataset_hash})
    return 0
