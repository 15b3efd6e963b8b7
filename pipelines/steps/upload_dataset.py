"""Upload the prepared files to the NeMo Data Store and register the dataset in the Entity Store.

The Data Store speaks the Hugging Face Hub HTTP API under <datastore>/v1/hf
(https://docs.nvidia.com/nemo/microservices/25.8.0/manage-entities/datasets/create-dataset.html).
The calls below are the ones huggingface_hub makes for create_repo and upload_file (repo
creation, preupload to learn each file's upload mode, Git LFS batch upload for "lfs" files,
then one NDJSON commit), done with httpx so the step needs no extra client and stays testable;
downloads use the `resolve` route the same way. Entity Store namespaces and datasets go through
the NeMo microservices SDK.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nemo_microservices as nemo

from pipelines.steps._common import (
    StepError,
    add_output_dir,
    add_service_url,
    dumps,
    parser_for,
    write_outputs,
)
from pipelines.steps._http import Conflict, ServiceClient, nemo_client, nemo_errors

log = logging.getLogger(__name__)

HF_PREFIX = "/v1/hf"
REVISION = "main"
LFS_JSON = "application/vnd.git-lfs+json"


@dataclass(frozen=True)
class RepoFile:
    path_in_repo: str
    content: bytes

    @property
    def oid(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def collect_files(dataset_dir: Path) -> list[RepoFile]:
    files = [
        RepoFile(path.relative_to(dataset_dir).as_posix(), path.read_bytes())
        for path in sorted(dataset_dir.rglob("*.jsonl"))
    ]
    if not files:
        raise StepError(f"no .jsonl files under {dataset_dir}")
    return files


def content_hash(files: Iterable[RepoFile]) -> str:
    """The dataset's content hash: sha256 over each file's path and sha256, in the order given."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.path_in_repo}\0{file.oid}\n".encode())
    return digest.hexdigest()


def versioned_name(name: str, dataset_hash: str) -> str:
    """One immutable dataset per content: the hash prefix makes the name a version."""
    return f"{name}-{dataset_hash[:12]}"


def download(datastore: ServiceClient, repo_id: str, path_in_repo: str, revision: str = REVISION) -> bytes:
    """One file of a Data Store dataset repo, fetched with the gateway credentials."""
    return datastore.request("GET", f"{HF_PREFIX}/datasets/{repo_id}/resolve/{revision}/{path_in_repo}").content


def ensure_namespace(entity_store: nemo.NeMoMicroservices, datastore: ServiceClient, namespace: str) -> None:
    # Both stores answer 409 (or 422, as the NVIDIA data-flywheel blueprint also accepts)
    # when the namespace already exists; the SDK would retry a 409, so it is told not to.
    try:
        with nemo_errors(f"creating Entity Store namespace {namespace}"):
            entity_store.with_options(max_retries=0).namespaces.create(id=namespace)
    except Conflict:
        pass
    except StepError as exc:
        if not isinstance(exc.__cause__, nemo.UnprocessableEntityError):
            raise
    datastore.request("POST", "/v1/datastore/namespaces", data={"namespace": namespace}, accept=(200, 201, 409, 422))


def create_repo(datastore: ServiceClient, namespace: str, name: str) -> None:
    datastore.request(
        "POST",
        f"{HF_PREFIX}/api/repos/create",
        json={"name": name, "organization": namespace, "type": "dataset", "private": False},
        accept=(200, 201, 409),
    )


def upload_modes(datastore: ServiceClient, repo_id: str, files: Sequence[RepoFile]) -> dict[str, str]:
    body = {
        "files": [
            {
                "path": file.path_in_repo,
                "size": len(file.content),
                "sample": base64.b64encode(file.content[:512]).decode(),
            }
            for file in files
        ]
    }
    answer = datastore.json("POST", f"{HF_PREFIX}/api/datasets/{repo_id}/preupload/{REVISION}", json=body)
    modes = {entry["path"]: entry.get("uploadMode", "regular") for entry in answer.get("files", [])}
    missing = {file.path_in_repo for file in files} - modes.keys()
    if missing:
        raise StepError(f"preupload did not answer for {sorted(missing)}")
    return modes


def upload_lfs(datastore: ServiceClient, repo_id: str, files: Sequence[RepoFile]) -> None:
    batch = datastore.json(
        "POST",
        f"{HF_PREFIX}/datasets/{repo_id}.git/info/lfs/objects/batch",
        json={
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{"oid": file.oid, "size": len(file.content)} for file in files],
            "hash_algo": "sha256",
        },
        headers={"Accept": LFS_JSON, "Content-Type": LFS_JSON},
    )
    by_oid = {file.oid: file for file in files}
    for entry in batch.get("objects", []):
        if "error" in entry:
            raise StepError(f"LFS refused {entry.get('oid')}: {entry['error']}")
        actions = entry.get("actions") or {}
        # No upload action means the store already holds the object.
        if "upload" in actions:
            upload = actions["upload"]
            file = by_oid[entry["oid"]]
            datastore.request("PUT", upload["href"], content=file.content, headers=upload.get("header", {}))
            if "verify" in actions:
                verify = actions["verify"]
                datastore.request(
                    "POST",
                    verify["href"],
                    json={"oid": file.oid, "size": len(file.content)},
                    headers={**verify.get("header", {}), "Accept": LFS_JSON},
                )


def commit(
    datastore: ServiceClient, repo_id: str, files: Sequence[RepoFile], modes: dict[str, str], summary: str
) -> None:
    lines: list[dict[str, Any]] = [{"key": "header", "value": {"summary": summary, "description": ""}}]
    for file in files:
        if modes[file.path_in_repo] == "lfs":
            value = {"path": file.path_in_repo, "algo": "sha256", "oid": file.oid, "size": len(file.content)}
            lines.append({"key": "lfsFile", "value": value})
        else:
            content = base64.b64encode(file.content).decode()
            value = {"path": file.path_in_repo, "content": content, "encoding": "base64"}
            lines.append({"key": "file", "value": value})
    datastore.request(
        "POST",
        f"{HF_PREFIX}/api/datasets/{repo_id}/commit/{REVISION}",
        content="".join(dumps(line) + "\n" for line in lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )


def register_dataset(entity_store: nemo.NeMoMicroservices, namespace: str, name: str, description: str) -> str:
    """Register (or refresh) the Entity Store record that Customizer and Evaluator resolve."""
    files_url = f"hf://datasets/{namespace}/{name}"
    try:
        with nemo_errors(f"registering dataset {namespace}/{name}"):
            entity_store.with_options(max_retries=0).datasets.create(
                name=name, namespace=namespace, description=description, files_url=files_url
            )
    except Conflict:
        with nemo_errors(f"updating dataset {namespace}/{name}"):
            entity_store.datasets.update(name, namespace=namespace, description=description, files_url=files_url)
    return files_url


def publish(
    entity_store: nemo.NeMoMicroservices,
    datastore: ServiceClient,
    files: Sequence[RepoFile],
    *,
    namespace: str,
    name: str,
    description: str,
) -> str:
    """Upload the files into the dataset repo <namespace>/<name> (one commit) and register it; its hf:// URL."""
    repo_id = f"{namespace}/{name}"
    ensure_namespace(entity_store, datastore, namespace)
    create_repo(datastore, namespace, name)
    modes = upload_modes(datastore, repo_id, files)
    lfs_files = [file for file in files if modes[file.path_in_repo] == "lfs"]
    if lfs_files:
        upload_lfs(datastore, repo_id, lfs_files)
    commit(datastore, repo_id, files, modes, f"Upload {len(files)} files")
    log.info("uploaded %s to %s", [file.path_in_repo for file in files], repo_id)
    return register_dataset(entity_store, namespace, name, description)


def upload_dataset(
    entity_store: nemo.NeMoMicroservices,
    datastore: ServiceClient,
    *,
    dataset_dir: Path,
    namespace: str,
    name: str,
    description: str,
) -> str:
    files = collect_files(dataset_dir)
    return publish(entity_store, datastore, files, namespace=namespace, name=name, description=description)


def main(argv: Sequence[str]) -> int:
    parser = parser_for("upload-dataset", "Upload dataset files to the Data Store and register them.")
    parser.add_argument("--dataset-dir", type=Path, required=True)
    parser.add_argument("--dataset-hash", required=True, help="prepare-dataset's dataset-hash output")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True, help="dataset name; the hash prefix is appended")
    parser.add_argument("--description", default="")
    add_service_url(parser, "--datastore-url", "DATASTORE_URL", "NeMo Data Store")
    add_service_url(parser, "--entity-store-url", "ENTITY_STORE_URL", "NeMo Entity Store")
    add_output_dir(parser)
    args = parser.parse_args(argv)

    name = versioned_name(args.name, args.dataset_hash)
    with nemo_client(args.entity_store_url) as entity_store, ServiceClient(args.datastore_url) as datastore:
        files_url = upload_dataset(
            entity_store,
            datastore,
            dataset_dir=args.dataset_dir,
            namespace=args.namespace,
            name=name,
            description=args.description or f"dataset {args.dataset_hash}",
        )
    write_outputs(args.output_dir, {"dataset-name": name, "files-url": files_url})
    return 0
