"""Errors, CLI helpers and output files shared by every step."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

# EX_TEMPFAIL from sysexits.h: the templates retry a step only when it exits with this code.
EXIT_TRANSIENT = 75


# The step's environment. A pod has one process per step, so this is os.environ; the in-process DAG test
# runs steps side by side in threads, each with the environment its template declares.
ENVIRONMENT: ContextVar[Mapping[str, str]] = ContextVar("ENVIRONMENT", default=os.environ)


def env(name: str, default: str | None = None) -> str | None:
    """A variable of the step's environment; unset and empty both count as missing."""
    return ENVIRONMENT.get().get(name) or default


class StepError(RuntimeError):
    """A definitive failure: running the step again with the same inputs will not help."""


class TransientError(StepError):
    """A service stayed unreachable or kept failing; the step may succeed if it is retried."""


def parser_for(step: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m pipelines.steps {step}", description=description)


def add_service_url(parser: argparse.ArgumentParser, flag: str, env_var: str, what: str) -> None:
    """A base URL that the Argo template passes through the environment; a flag overrides it."""
    default = env(env_var)
    parser.add_argument(
        flag,
        default=default,
        required=default is None,
        help=f"{what} base URL (default: ${env_var})",
    )


def add_output_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("/tmp/outputs"),
        help="directory receiving one file per output (Argo output parameters read them)",
    )


def json_object(text: str) -> dict[str, Any]:
    """argparse type for an argument holding a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write_outputs(output_dir: Path, outputs: Mapping[str, Any]) -> None:
    """Write each output to its own file: strings verbatim, everything else as compact JSON."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, value in outputs.items():
        text = value if isinstance(value, str) else dumps(value)
        (output_dir / name).write_text(text, encoding="utf-8")


def jsonl_bytes(records: Iterable[Any]) -> bytes:
    """A JSONL file's content: each record on its own line as json.dumps writes it, non-ASCII kept, UTF-8."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


def read_jsonl(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) for every non-blank line of a JSONL file."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


def load_jsonl_objects(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in read_jsonl(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StepError(f"{path}:{number}: invalid JSON: {exc}") from exc
        if not isinstance(record, dict):
            raise StepError(f"{path}:{number}: expected a JSON object")
        records.append(record)
    return records
