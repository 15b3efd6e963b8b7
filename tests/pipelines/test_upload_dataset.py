"""upload-dataset: the Data Store (HF API) and Entity Store request shapes."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response

from pipelines.steps.upload_dataset import main, versioned_name

DATASET_HASH = "ab" * 32
NAME = versioned_name("care", DATASET_HASH)
REPO = f"llmops/{NAME}"


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    for relative, content in {
        "training/training.jsonl": '{"messages": []}\n' * 3,
        "validation/validation.jsonl": '{"messages": []}\n',
        "testing/testing.jsonl": '{"messages": []}\n',
    }.items():
        path = tmp_path / "dataset" / relative
        path.parent.mkdir(parents=True)
        path.write_text(content)
    return tmp_path / "dataset"


def _serve_datastore_and_entity_store(httpserver, dataset_status: int = 201) -> None:
    httpserver.expect_request("/v1/namespaces", method="POST").respond_with_json({}, status=409)
    httpserver.expect_request("/v1/datastore/namespaces", method="POST").respond_with_json({}, status=201)
    httpserver.expect_request("/v1/hf/api/repos/create", method="POST").respond_with_json({"url": "x"})

    def preupload(request: Request) -> Response:
        files = request.get_json()["files"]
        # The store decides per file; make the big training file go through LFS.
        modes = [{"path": f["path"], "uploadMode": "lfs" if f["size"] > 20 else "regular"} for f in files]
        return Response(json.dumps({"files": modes}), content_type="application/json")

    httpserver.expect_request(f"/v1/hf/api/datasets/{REPO}/preupload/main", method="POST").respond_with_handler(
        preupload
    )

    def lfs_batch(request: Request) -> Response:
        objects = request.get_json()["objects"]
        actions = {
            "upload": {"href": httpserver.url_for(f"/lfs/{objects[0]['oid']}"), "header": {"X-Upload": "token"}},
            "verify": {"href": httpserver.url_for("/lfs/verify"), "header": {}},
        }
        body = {"objects": [{**obj, "actions": actions} for obj in objects]}
        return Response(json.dumps(body), content_type="application/vnd.git-lfs+json")

    httpserver.expect_request(f"/v1/hf/datasets/{REPO}.git/info/lfs/objects/batch", method="POST").respond_with_handler(
        lfs_batch
    )
    httpserver.expect_request("/lfs/verify", method="POST").respond_with_data("")
    httpserver.expect_request(f"/v1/hf/api/datasets/{REPO}/commit/main", method="POST").respond_with_json(
        {"commitOid": "c0ffee"}
    )
    httpserver.expect_request("/v1/datasets", method="POST").respond_with_json({}, status=dataset_status)
    httpserver.expect_request(f"/v1/datasets/llmops/{NAME}", method="PATCH").respond_with_json({})


def _upload(httpserver, dataset_dir: Path, output_dir: Path) -> None:
    url = httpserver.url_for("/")
    argv = [
        "--dataset-dir", str(dataset_dir), "--dataset-hash", DATASET_HASH, "--namespace", "llmops",
        "--name", "care", "--datastore-url", url, "--entity-store-url", url, "--output-dir", str(output_dir),
    ]  # fmt: skip
    assert main(argv) == 0


def _requests(httpserver, path: str) -> list[Request]:
    return [request for request, _ in httpserver.log if request.path == path]


def test_uploads_files_and_registers_the_dataset(httpserver, dataset_dir: Path, tmp_path: Path) -> None:
    training = (dataset_dir / "training/training.jsonl").read_bytes()
    oid = hashlib.sha256(training).hexdigest()
    httpserver.expect_request(f"/lfs/{oid}", method="PUT").respond_with_data("")
    _serve_datastore_and_entity_store(httpserver)

    _upload(httpserver, dataset_dir, tmp_path / "out")

    assert _requests(httpserver, "/v1/namespaces")[0].get_json() == {"id": "llmops"}
    assert _requests(httpserver, "/v1/datastore/namespaces")[0].form["namespace"] == "llmops"
    assert _requests(httpserver, "/v1/hf/api/repos/create")[0].get_json() == {
        "name": NAME,
        "organization": "llmops",
        "type": "dataset",
        "private": False,
    }
    [put] = _requests(httpserver, f"/lfs/{oid}")
    assert put.get_data() == training and put.headers["X-Upload"] == "token"
    assert _requests(httpserver, "/lfs/verify")[0].get_json() == {"oid": oid, "size": len(training)}

    [commit] = _requests(httpserver, f"/v1/hf/api/datasets/{REPO}/commit/main")
    assert commit.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in commit.get_data(as_text=True).splitlines()]
    assert lines[0]["key"] == "header"
    by_path = {line["value"]["path"]: line for line in lines[1:]}
    assert by_path["training/training.jsonl"] == {
        "key": "lfsFile",
        "value": {"path": "training/training.jsonl", "algo": "sha256", "oid": oid, "size": len(training)},
    }
    regular = by_path["validation/validation.jsonl"]
    assert regular["key"] == "file" and regular["value"]["encoding"] == "base64"
    assert base64.b64decode(regular["value"]["content"]) == (dataset_dir / "validation/validation.jsonl").read_bytes()
    assert set(by_path) == {"training/training.jsonl", "validation/validation.jsonl", "testing/testing.jsonl"}

    [register] = _requests(httpserver, "/v1/datasets")
    assert register.get_json() == {
        "name": NAME,
        "namespace": "llmops",
        "description": f"dataset {DATASET_HASH}",
        "files_url": f"hf://datasets/{REPO}",
    }
    assert not _requests(httpserver, f"/v1/datasets/llmops/{NAME}")
    assert (tmp_path / "out/dataset-name").read_text() == NAME
    assert (tmp_path / "out/files-url").read_text() == f"hf://datasets/{REPO}"


def test_existing_dataset_registration_is_updated(httpserver, dataset_dir: Path, tmp_path: Path) -> None:
    httpserver.expect_request(
        f"/lfs/{hashlib.sha256((dataset_dir / 'training/training.jsonl').read_bytes()).hexdigest()}"
    ).respond_with_data("")
    _serve_datastore_and_entity_store(httpserver, dataset_status=409)

    _upload(httpserver, dataset_dir, tmp_path / "out")

    [patch] = _requests(httpserver, f"/v1/datasets/llmops/{NAME}")
    assert patch.get_json()["files_url"] == f"hf://datasets/{REPO}"
