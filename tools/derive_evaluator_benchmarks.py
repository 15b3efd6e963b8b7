"""Derive the LM Evaluation Harness config types that NeMo Evaluator 25.8 runs, from the wheel that ships them.

    pip download nvidia-lm-eval==25.8 --no-deps -d /tmp/lm-eval
    uv run --frozen python tools/derive_evaluator_benchmarks.py /tmp/lm-eval/nvidia_lm_eval-25.8-py3-none-any.whl

Evaluator 25.8 runs its `lm-harness` evaluations with nvidia-lm-eval 25.8; the evaluations that wheel defines
are listed in core_evals/lm_evaluation_harness/framework.yml. Only names are kept: each evaluation's config
type (what an Evaluator job's `config.type` names), the harness task it runs and the endpoint types it
supports. The fact file records the wheel's and the file's sha256, so a re-derivation shows what changed.
Everything Evaluator 25.8 cannot run this way (SQuAD, TriviaQA, GLUE, SuperGLUE) the pipelines run as
`custom` evaluation jobs over datasets they prepare.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
FRAMEWORK_FILE = "core_evals/lm_evaluation_harness/framework.yml"
PACKAGE = "nvidia-lm-eval"
VERSION = "25.8"
OUT = REPO / "facts" / f"evaluator-{VERSION}-benchmarks.json"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def derive(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as archive:
        framework_bytes = archive.read(FRAMEWORK_FILE)
        versions = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(versions[0]).decode() if versions else ""
    if f"\nVersion: {VERSION}\n" not in metadata:
        raise SystemExit(f"{wheel.name} is not {PACKAGE} {VERSION}")
    framework = yaml.safe_load(framework_bytes)
    types: dict[str, dict[str, Any]] = {}
    for evaluation in framework["evaluations"]:
        config = evaluation["defaults"]["config"]
        types[config["type"]] = {
            "task": config["params"]["task"],
            "endpoints": sorted(config.get("supported_endpoint_types") or []),
        }
    return {
        "evaluator": VERSION,
        "source": {
            "package": PACKAGE,
            "version": VERSION,
            "wheel": wheel.name,
            "wheel_sha256": _sha256(wheel.read_bytes()),
            "file": FRAMEWORK_FILE,
            "file_sha256": _sha256(framework_bytes),
            "generator": "tools/derive_evaluator_benchmarks.py",
            "generator_sha256": _sha256(Path(__file__).read_bytes()),
        },
        "lm_harness": dict(sorted(types.items())),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("wheel", type=Path, help=f"{PACKAGE} {VERSION} wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.write_text(json.dumps(derive(args.wheel), indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
