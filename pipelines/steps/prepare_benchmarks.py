"""Build the custom regression suites (SQuAD, TriviaQA, GLUE, SuperGLUE) that NeMo Evaluator 25.8 runs as
`custom` jobs, from the benchmarks' official distribution files, and upload them to the Data Store.

The distribution files sit in a Data Store dataset repo (--sources-repo), laid out as
  squad/dev-v2.0.json            SQuAD 2.0 dev set ({"data": [{"paragraphs": [{"context", "qas": [...]}]}]})
  triviaqa/verified-web-dev.json TriviaQA RC verified web dev set ({"Data": [{"Question", "Answer": {...}}]})
  glue/SST-2/dev.tsv, glue/MRPC/dev.tsv, glue/RTE/dev.tsv      GLUE dev sets, tab-separated with a header
  superglue/BoolQ/val.jsonl, superglue/CB/val.jsonl            SuperGLUE validation sets, JSON lines
Each task becomes one JSONL file of {"id", "prompt", "answer"} (question answering) or {"id", "prompt",
"label"} (classification, the label as the word the prompt asks for), sampled by a seeded hash of the
example id so the same seed and limit always pick the same examples. The files go into one dataset repo
named after their content hash; the step outputs each task's hf:// URL for evaluate-benchmarks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pipelines.steps._benchmarks import CUSTOM_SUITES, UnknownBenchmark, custom_suites, parse_benchmarks
from pipelines.steps._common import StepError, add_output_dir, add_service_url, jsonl_bytes, parser_for, write_outputs
from pipelines.steps._http import ServiceClient, nemo_client
from pipelines.steps.upload_dataset import RepoFile, content_hash, download, publish, versioned_name

log = logging.getLogger(__name__)

Record = dict[str, str]
YES_NO = {True: "yes", False: "no", "1": "yes", "0": "no", "entailment": "yes", "not_entailment": "no"}


def _squad(raw: bytes) -> Iterator[Record]:
    for article in json.loads(raw)["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [answer["text"] for answer in qa.get("answers") or []]
                answer = answers[0] if answers and not qa.get("is_impossible") else "unanswerable"
                prompt = (
                    'Answer the question with a short span copied from the passage, or with "unanswerable" '
                    f"if the passage does not answer it.\n\nPassage: {paragraph['context']}\n"
                    f"Question: {qa['question']}\nAnswer:"
                )
                yield {"id": qa["id"], "prompt": prompt, "answer": answer}


def _triviaqa(raw: bytes) -> Iterator[Record]:
    for entry in json.loads(raw)["Data"]:
        prompt = f"Answer the trivia question with a few words.\nQuestion: {entry['Question']}\nAnswer:"
        yield {"id": entry["QuestionId"], "prompt": prompt, "answer": entry["Answer"]["NormalizedValue"]}


def _tsv(raw: bytes) -> Iterator[tuple[int, dict[str, str]]]:
    # GLUE's TSVs are not CSV-quoted: quotes inside sentences are literal.
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter="\t", quoting=csv.QUOTE_NONE)
    yield from enumerate(reader)


def _sst2(raw: bytes) -> Iterator[Record]:
    for number, row in _tsv(raw):
        prompt = (
            "Is the sentiment of this sentence positive or negative? Answer with one word.\n"
            f"Sentence: {row['sentence']}\nAnswer:"
        )
        yield {"id": f"sst2-{number}", "prompt": prompt, "label": "positive" if row["label"] == "1" else "negative"}


def _sentence_pair_prompt(question: str, first: str, second: str) -> str:
    return f"{question} Answer yes or no.\nSentence 1: {first}\nSentence 2: {second}\nAnswer:"


def _mrpc(raw: bytes) -> Iterator[Record]:
    for number, row in _tsv(raw):
        prompt = _sentence_pair_prompt(
            "Do these two sentences mean the same thing?", row["#1 String"], row["#2 String"]
        )
        yield {"id": f"mrpc-{number}", "prompt": prompt, "label": YES_NO[row["Quality"]]}


def _rte(raw: bytes) -> Iterator[Record]:
    for number, row in _tsv(raw):
        prompt = _sentence_pair_prompt("Does the first sentence imply the second?", row["sentence1"], row["sentence2"])
        yield {"id": f"rte-{row.get('index', number)}", "prompt": prompt, "label": YES_NO[row["label"]]}


def _jsonl(raw: bytes) -> Iterator[dict[str, Any]]:
    for line in raw.decode("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def _boolq(raw: bytes) -> Iterator[Record]:
    for entry in _jsonl(raw):
        prompt = f"{entry['passage']}\nQuestion: {entry['question']}?\nAnswer yes or no:"
        yield {"id": f"boolq-{entry['idx']}", "prompt": prompt, "label": YES_NO[bool(entry["label"])]}


def _cb(raw: bytes) -> Iterator[Record]:
    for entry in _jsonl(raw):
        prompt = (
            f"Premise: {entry['premise']}\nHypothesis: {entry['hypothesis']}\n"
            "Does the premise entail the hypothesis, contradict it, or neither? "
            "Answer with one word: entailment, contradiction or neutral.\nAnswer:"
        )
        yield {"id": f"cb-{entry['idx']}", "prompt": prompt, "label": entry["label"]}


PARSERS: dict[str, Callable[[bytes], Iterator[Record]]] = {
    "squad": _squad,
    "triviaqa": _triviaqa,
    "sst2": _sst2,
    "mrpc": _mrpc,
    "rte": _rte,
    "boolq": _boolq,
    "cb": _cb,
}


def sample(records: Sequence[Record], *, task: str, seed: int, limit: int) -> list[Record]:
    """The first `limit` records (0: all) in the order of a seeded hash of their ids: a stable sample."""

    def rank(record: Record) -> str:
        return hashlib.sha256(f"{seed}:{task}:{record['id']}".encode()).hexdigest()

    ordered = sorted(records, key=rank)
    return ordered[:limit] if limit > 0 else ordered


def build(fetch: Callable[[str], bytes], suites: Sequence[str], *, seed: int, limit: int) -> list[RepoFile]:
    files = []
    for suite in suites:
        for task in CUSTOM_SUITES[suite]:
            try:
                records = list(PARSERS[task.name](fetch(task.source)))
            except (KeyError, ValueError) as exc:
                raise StepError(f"{task.source} is not in the {task.name} distribution format: {exc!r}") from exc
            chosen = sample(records, task=task.name, seed=seed, limit=limit)
            if not chosen:
                raise StepError(f"{task.source} holds no examples")
            files.append(RepoFile(f"{suite}/{task.name}.jsonl", jsonl_bytes(chosen)))
            log.info("%s/%s: %d of %d examples", suite, task.name, len(chosen), len(records))
    return files


def main(argv: Sequence[str]) -> int:
    parser = parser_for("prepare-benchmarks", "Build the custom regression suites and upload them to the Data Store.")
    parser.add_argument("--benchmarks", required=True, help="the suite: LM Harness types and custom suites")
    parser.add_argument("--sources-repo", required=True, help="Data Store dataset repo with the official files")
    parser.add_argument("--sources-revision", default="main")
    parser.add_argument("--limit-samples", type=int, default=0, help="examples per task (0: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", default="regression-benchmarks", help="dataset name; the hash is appended")
    add_service_url(parser, "--datastore-url", "DATASTORE_URL", "NeMo Data Store")
    add_service_url(parser, "--entity-store-url", "ENTITY_STORE_URL", "NeMo Entity Store")
    add_output_dir(parser)
    args = parser.parse_args(argv)
    try:
        suites = custom_suites(parse_benchmarks(args.benchmarks))
    except UnknownBenchmark as exc:
        raise StepError(str(exc)) from exc

    datasets: dict[str, dict[str, str]] = {}
    counts: dict[str, int] = {}
    dataset_hash = files_url = "none"
    if suites:
        with ServiceClient(args.datastore_url, timeout=300.0) as datastore, nemo_client(args.entity_store_url) as store:
            files = build(
                lambda path: download(datastore, args.sources_repo, path, args.sources_revision),
                suites,
                seed=args.seed,
                limit=args.limit_samples,
            )
            dataset_hash = content_hash(sorted(files, key=lambda file: file.path_in_repo))
            name = versioned_name(args.name, dataset_hash)
            files_url = publish(
                store,
                datastore,
                files,
                namespace=args.namespace,
                name=name,
                description=f"regression suites {', '.join(suites)} from {args.sources_repo}",
            )
        for file in files:
            suite, task_file = file.path_in_repo.split("/")
            datasets.setdefault(suite, {})[task_file.removesuffix(".jsonl")] = f"{files_url}/{file.path_in_repo}"
            counts[f"{suite}.{task_file.removesuffix('.jsonl')}"] = file.content.count(b"\n")
    outputs = {"datasets": datasets, "stats": counts, "dataset-hash": dataset_hash, "files-url": files_url}
    write_outputs(args.output_dir, outputs)
    return 0
