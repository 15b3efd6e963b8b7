"""A fake NeMo microservices platform (Data Store, Entity Store, Customizer, Evaluator) and fake NIMs that hold
the steps to the upstream contract: every JSON request body is validated against the request type of the
official `nemo-microservices` SDK at the version matching NeMo 25.8 (1.1.0), with unknown fields refused,
and every response is built from the SDK's response model. Requests that break the contract are answered
422 and recorded in `violations`; semantic rules the API enforces (a job's config must be a customization
config, an evaluation type must be one Evaluator 25.8 runs, datasets must exist) are checked too.
Every request must carry the gateway credential.
"""

from __future__ import annotations

import base64
import importlib
import itertools
import json
import math
import pkgutil
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nemo_microservices.types as sdk_types
from nemo_microservices._models import BaseModel as SdkModel
from nemo_microservices.pagination import SyncDefaultPagination
from nemo_microservices.types import (
    Dataset,
    DeleteResponse,
    EvaluationResult,
    Model,
    Namespace,
    dataset_create_params,
    dataset_update_params,
    model_create_params,
    model_update_params,
    namespace_create_params,
)
from nemo_microservices.types.chat import ChatCompletionResponse, completion_create_params
from nemo_microservices.types.customization import (
    CustomizationJob,
    CustomizationStatusDetails,
    config_create_params,
)
from nemo_microservices.types.customization import job_create_params as customization_job_params
from nemo_microservices.types.customization_config import CustomizationConfig
from nemo_microservices.types.evaluation import EvaluationJob
from nemo_microservices.types.evaluation import job_create_params as evaluation_job_params
from nemo_microservices.types.model_ev_param import ModelEvParam
from pydantic import ConfigDict, TypeAdapter, ValidationError
from typing_extensions import is_typeddict
from werkzeug import Request, Response
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server

from pipelines.steps._benchmarks import lm_harness_types


def _forbid_unknown_fields() -> None:
    """The SDK's TypedDicts accept extra keys by default; the API does not know them, so neither do we."""
    for info in pkgutil.walk_packages(sdk_types.__path__, sdk_types.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and is_typeddict(value) and value.__module__ == module.__name__:
                value.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


_forbid_unknown_fields()
_adapters: dict[Any, TypeAdapter[Any]] = {}


def _materialize(value: Any) -> Any:
    """Pydantic validates Iterable fields lazily; walk them so their items are validated too."""
    if isinstance(value, Mapping):
        return {key: _materialize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_materialize(item) for item in value]
    if hasattr(value, "__next__"):
        return [_materialize(item) for item in value]
    return value


def validate_request(params_type: Any, body: Any) -> dict[str, Any]:
    if params_type not in _adapters:
        _adapters[params_type] = TypeAdapter(params_type)
    result: dict[str, Any] = _materialize(_adapters[params_type].validate_python(body))
    return result


def _unknown_fields(model: SdkModel, path: str = "") -> list[str]:
    found = [f"{path}{key}" for key in (model.model_extra or {})]
    for name in type(model).model_fields:
        value = getattr(model, name)
        children = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else [value]
        for child in children:
            if isinstance(child, SdkModel):
                found += _unknown_fields(child, f"{path}{name}.")
    return found


def respond(model_type: type[SdkModel], data: Mapping[str, Any], status: int = 200) -> Response:
    """A response body built from the SDK's response model: validated, and with no field it does not know."""
    model = model_type.model_validate(dict(data))
    if unknown := _unknown_fields(model):
        raise AssertionError(f"fake response has fields {model_type.__name__} does not define: {unknown}")
    return Response(model.model_dump_json(exclude_none=True), status=status, content_type="application/json")


def page(model_type: type[SdkModel], items: list[Mapping[str, Any]], request: Request) -> Response:
    number = int(request.args.get("page", 1))
    size = int(request.args.get("page_size", 10))
    chunk = items[(number - 1) * size : number * size]
    body = {
        "object": "list",
        "data": [model_type.model_validate(dict(item)).model_dump(mode="json", exclude_none=True) for item in chunk],
        "pagination": {
            "page": number,
            "page_size": size,
            "current_page_size": len(chunk),
            "total_pages": max(1, math.ceil(len(items) / size)),
            "total_results": len(items),
        },
    }
    SyncDefaultPagination[model_type].model_validate(body)  # type: ignore[valid-type]
    return Response(json.dumps(body), content_type="application/json")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ContractViolation(Exception):
    pass


def _filters(request: Request) -> dict[str, Any]:
    """filter[a]=x, filter[b][c]=y (the SDK's bracket encoding) -> {"a": "x", "b": {"c": "y"}}."""
    result: dict[str, Any] = {}
    for key, value in request.args.items(multi=True):
        parts = re.findall(r"\[([^\]]*)\]", key)
        if not key.startswith("filter[") or not parts:
            continue
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


class _KeepAlive(WSGIRequestHandler):
    # HTTP/1.1 keeps the steps' pooled connections open, as a real gateway does.
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any) -> None:
        pass


class Server:
    """A werkzeug app on 127.0.0.1 in a thread; requests served concurrently."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_KeepAlive)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()


@dataclass
class Job:
    record: dict[str, Any]
    polls: int = 0


@dataclass
class Gateway:
    """What the platform gateway checks: the API key in api-key mode, a bearer token in jwt mode."""

    api_key: str | None = None
    bearer_token: str | None = None

    def allows(self, request: Request) -> bool:
        if self.api_key is not None and request.headers.get("x-api-key") != self.api_key:
            return False
        return self.bearer_token is None or request.headers.get("Authorization") == f"Bearer {self.bearer_token}"


BenchmarkScore = Callable[[str, str, str], float]


@dataclass
class FakePlatform:
    gateway: Gateway
    # (model id, benchmark, task) -> score of every metric of that task
    benchmark_score: BenchmarkScore
    targets: set[str] = field(default_factory=lambda: {"meta/llama-3.1-8b-instruct@2.0"})
    # Jobs stay running until cancelled: a long training run for the stop test.
    hold_jobs: bool = False
    # What NIM serves, as the Evaluator's targets reach it.
    served: Callable[[], set[str]] = field(default=lambda: set())
    # What the judge NIM serves, as an llm-judge metric reaches it.
    judges: Callable[[], set[str]] = field(default=lambda: set())
    violations: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    namespaces: set[str] = field(default_factory=set)
    datastore_namespaces: set[str] = field(default_factory=set)
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    customization_jobs: dict[str, Job] = field(default_factory=dict)
    customization_job_names: set[str] = field(default_factory=set)
    evaluation_jobs: dict[str, Job] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.rules = Map(
            [
                Rule("/v1/datastore/namespaces", methods=["POST"], endpoint="datastore_namespace"),
                Rule("/v1/hf/api/repos/create", methods=["POST"], endpoint="create_repo"),
                Rule("/v1/hf/api/datasets/<ns>/<name>/preupload/<rev>", methods=["POST"], endpoint="preupload"),
                Rule("/v1/hf/api/datasets/<ns>/<name>/commit/<rev>", methods=["POST"], endpoint="commit"),
                Rule("/v1/hf/datasets/<ns>/<name>/resolve/<rev>/<path:path>", methods=["GET"], endpoint="resolve"),
                Rule("/v1/namespaces", methods=["POST"], endpoint="create_namespace"),
                Rule("/v1/datasets", methods=["POST"], endpoint="create_dataset"),
                Rule("/v1/datasets/<ns>/<name>", methods=["PATCH"], endpoint="update_dataset"),
                Rule("/v1/models", methods=["POST"], endpoint="create_model"),
                Rule("/v1/models/<ns>/<name>", methods=["GET", "PATCH", "DELETE"], endpoint="model"),
                Rule("/v1/customization/configs", methods=["POST"], endpoint="create_config"),
                Rule("/v1/customization/configs/<ns>/<name>", methods=["GET"], endpoint="get_config"),
                Rule("/v1/customization/jobs", methods=["POST", "GET"], endpoint="customization_job_collection"),
                Rule("/v1/customization/jobs/<job_id>/status", methods=["GET"], endpoint="customization_status"),
                Rule("/v1/customization/jobs/<job_id>/cancel", methods=["POST"], endpoint="customization_cancel"),
                Rule("/v1/evaluation/jobs", methods=["POST", "GET"], endpoint="evaluation_job_collection"),
                Rule("/v1/evaluation/jobs/<job_id>", methods=["GET"], endpoint="evaluation_job"),
                Rule("/v1/evaluation/jobs/<job_id>/cancel", methods=["POST"], endpoint="evaluation_cancel"),
                Rule("/v1/evaluation/jobs/<job_id>/results", methods=["GET"], endpoint="evaluation_results"),
            ]
        )
        self.server = Server(self.wsgi)
        self.url = self.server.url

    # -- plumbing ---------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self.lock:
            self.requests.append((request.method, request.path))
        if not self.gateway.allows(request):
            return Response("missing or wrong gateway credential", status=401)(environ, start_response)
        try:
            endpoint, values = self.rules.bind_to_environ(environ).match()
            with self.lock:
                response = getattr(self, endpoint)(request, **values)
        except ValidationError as exc:
            message = f"{request.method} {request.path}: {exc}"
            self.violations.append(message)
            response = Response(json.dumps({"detail": message}), status=422, content_type="application/json")
        except ContractViolation as exc:
            self.violations.append(f"{request.method} {request.path}: {exc}")
            response = Response(json.dumps({"detail": str(exc)}), status=422, content_type="application/json")
        except HTTPException as exc:
            response = exc.get_response()
        return response(environ, start_response)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.ids):06d}"

    def conflict(self, what: str) -> Response:
        return Response(json.dumps({"detail": f"{what} already exists"}), status=409, content_type="application/json")

    def insert(self, store: dict[str, dict[str, Any]], body: dict[str, Any], schema: type[SdkModel]) -> Response:
        """Create `<namespace>/<name>` in `store` as the services do: 409 when it exists."""
        key = f"{body['namespace']}/{body['name']}"
        if key in store:
            return self.conflict(key)
        store[key] = {**body, "created_at": _now()}
        return respond(schema, store[key])

    # -- Data Store (Hugging Face API) ------------------------------------------------------------

    def datastore_namespace(self, request: Request) -> Response:
        namespace = request.form["namespace"]
        if namespace in self.datastore_namespaces:
            return self.conflict(namespace)
        self.datastore_namespaces.add(namespace)
        return Response(json.dumps({"namespace": namespace}), status=201, content_type="application/json")

    def create_repo(self, request: Request) -> Response:
        body = request.get_json()
        repo = f"{body['organization']}/{body['name']}"
        if body.get("type") != "dataset":
            raise ContractViolation(f"repo type {body.get('type')!r}")
        if repo in self.repos:
            return self.conflict(repo)
        self.repos[repo] = {}
        return Response(json.dumps({"url": f"{self.url}/v1/hf/datasets/{repo}"}), content_type="application/json")

    def preupload(self, request: Request, ns: str, name: str, rev: str) -> Response:
        if f"{ns}/{name}" not in self.repos:
            raise NotFound()
        files = [{"path": f["path"], "uploadMode": "regular"} for f in request.get_json()["files"]]
        return Response(json.dumps({"files": files}), content_type="application/json")

    def commit(self, request: Request, ns: str, name: str, rev: str) -> Response:
        repo = self.repos.get(f"{ns}/{name}")
        if repo is None:
            raise NotFound()
        for line in request.get_data(as_text=True).splitlines():
            entry = json.loads(line)
            if entry["key"] == "file":
                repo[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
        return Response(json.dumps({"commitOid": "0" * 40}), content_type="application/json")

    def resolve(self, request: Request, ns: str, name: str, rev: str, path: str) -> Response:
        content = self.repos.get(f"{ns}/{name}", {}).get(path)
        if content is None:
            raise NotFound()
        return Response(content, content_type="application/octet-stream")

    def file(self, files_url: str) -> bytes | None:
        """The content behind hf://datasets/<ns>/<repo>/<path>."""
        match = re.fullmatch(r"hf://datasets/([^/]+)/([^/]+)/(.+)", files_url)
        return self.repos.get(f"{match[1]}/{match[2]}", {}).get(match[3]) if match else None

    # -- Entity Store ---------------------------------------------------------------------------

    def create_namespace(self, request: Request) -> Response:
        body = validate_request(namespace_create_params.NamespaceCreateParams, request.get_json())
        if body["id"] in self.namespaces:
            return self.conflict(body["id"])
        self.namespaces.add(body["id"])
        return respond(Namespace, {**body, "created_at": _now()})

    def create_dataset(self, request: Request) -> Response:
        body = validate_request(dataset_create_params.DatasetCreateParams, request.get_json())
        if body["namespace"] not in self.namespaces:
            raise ContractViolation(f"namespace {body['namespace']} does not exist")
        key = f"{body['namespace']}/{body['name']}"
        if key in self.datasets:
            return self.conflict(key)
        self.datasets[key] = {**body, "id": self.new_id("dataset"), "created_at": _now()}
        return respond(Dataset, self.datasets[key])

    def update_dataset(self, request: Request, ns: str, name: str) -> Response:
        # The SDK's params type holds the path's namespace too; the body carries the rest.
        body = validate_request(dataset_update_params.DatasetUpdateParams, {**request.get_json(), "namespace": ns})
        if f"{ns}/{name}" not in self.datasets:
            raise NotFound()
        self.datasets[f"{ns}/{name}"].update(body)
        return respond(Dataset, self.datasets[f"{ns}/{name}"])

    def create_model(self, request: Request) -> Response:
        body = validate_request(model_create_params.ModelCreateParams, request.get_json())
        return self.insert(self.models, body, Model)

    def model(self, request: Request, ns: str, name: str) -> Response:
        key = f"{ns}/{name}"
        if key not in self.models:
            raise NotFound()
        if request.method == "PATCH":
            body = validate_request(model_update_params.ModelUpdateParams, {**request.get_json(), "namespace": ns})
            self.models[key].update(body)
        elif request.method == "DELETE":
            del self.models[key]
            return respond(DeleteResponse, {"id": key, "deleted_at": _now()})
        return respond(Model, self.models[key])

    # -- Customizer -----------------------------------------------------------------------------

    def create_config(self, request: Request) -> Response:
        body = validate_request(config_create_params.ConfigCreateParams, request.get_json())
        if body.get("target") not in self.targets:
            raise ContractViolation(f"customization target {body.get('target')} does not exist")
        return self.insert(self.configs, body, CustomizationConfig)

    def get_config(self, request: Request, ns: str, name: str) -> Response:
        if f"{ns}/{name}" not in self.configs:
            raise NotFound()
        return respond(CustomizationConfig, self.configs[f"{ns}/{name}"])

    def customization_job_collection(self, request: Request) -> Response:
        if request.method == "GET":
            status = _filters(request).get("status")
            jobs = [job.record for job in self.customization_jobs.values() if status in (None, job.record["status"])]
            if request.args.get("sort") == "-created_at":
                jobs = jobs[::-1]
            return page(CustomizationJob, jobs, request)
        body = validate_request(customization_job_params.JobCreateParams, request.get_json())
        if body["config"] not in self.configs:
            # A target name (e.g. meta/llama-3.1-8b-instruct@2.0) is not a customization config.
            raise ContractViolation(f"customization config {body['config']} does not exist")
        dataset = body["dataset"]
        if f"{dataset['namespace']}/{dataset['name']}" not in self.datasets:
            raise ContractViolation(f"dataset {dataset} is not registered")
        if body.get("name") and body["name"] in self.customization_job_names:
            return self.conflict(f"customization job {body['name']}")
        self.customization_job_names.add(body.get("name", ""))
        job_id = self.new_id("cust")
        # The API keeps only what its CustomizationJob schema has (no name, for one).
        record = {
            **{key: value for key, value in body.items() if key in CustomizationJob.model_fields},
            "id": job_id,
            "output_model": f"{body['output_model']}@{job_id}",
            "status": "created",
            "created_at": _now(),
            "namespace": dataset["namespace"],
        }
        self.customization_jobs[job_id] = Job(record)
        return respond(CustomizationJob, record)

    def customization_status(self, request: Request, job_id: str) -> Response:
        job = self.customization_jobs.get(job_id) or _not_found()
        job.polls += 1
        record = job.record
        if record["status"] == "created":
            record["status"] = "running"
        elif record["status"] == "running" and not self.hold_jobs:
            record["status"] = "completed"
            self._register_output_model(record)
        status: dict[str, Any] = {
            "status": record["status"],
            "created_at": record["created_at"],
            "updated_at": _now(),
            "percentage_done": {"running": 50.0, "completed": 100.0}.get(record["status"], 0.0),
            "epochs_completed": 1 if record["status"] == "running" else record["hyperparameters"]["epochs"],
            "steps_completed": 10,
        }
        if record["status"] == "completed":
            # A point without a value, as the Customizer reports at the start of an epoch.
            losses = [{"step": 10, "value": 1.9}, {"step": 20, "value": 1.2}, {"step": 30}]
            status["metrics"] = {"keys": ["train_loss", "val_loss"], "metrics": {"train_loss": losses,
                                 "val_loss": [{"step": 20, "value": 1.4}]}}  # fmt: skip
        if record["status"] == "cancelled":
            status["status_logs"] = [{"updated_at": _now(), "message": "cancelled by user"}]
        return respond(CustomizationStatusDetails, status)

    def _register_output_model(self, record: dict[str, Any]) -> None:
        namespace, name = record["output_model"].split("/", 1)
        target = self.configs[record["config"]]["target"]
        self.models[record["output_model"]] = {
            "name": name,
            "namespace": namespace,
            "base_model": target.split("@")[0],
            "artifact": {"files_url": f"hf://models/{record['output_model']}", "status": "upload_completed"},
            "peft": {"finetuning_type": "lora"},
            "created_at": _now(),
        }

    def customization_cancel(self, request: Request, job_id: str) -> Response:
        job = self.customization_jobs.get(job_id) or _not_found()
        job.record["status"] = "cancelled"
        self.cancelled.append(job_id)
        return respond(CustomizationJob, job.record)

    # -- Evaluator ------------------------------------------------------------------------------

    def evaluation_job_collection(self, request: Request) -> Response:
        if request.method == "GET":
            wanted = _filters(request)
            fields = wanted.get("custom_fields", {})
            jobs = [
                job.record
                for job in self.evaluation_jobs.values()
                if wanted.get("namespace") in (None, job.record.get("namespace"))
                and fields.items() <= (job.record.get("custom_fields") or {}).items()
            ]
            return page(EvaluationJob, jobs, request)
        body = validate_request(evaluation_job_params.JobCreateParams, request.get_json())
        self._check_evaluation(body)
        job_id = self.new_id("eval")
        record = {**body, "id": job_id, "status": "created", "created_at": _now()}
        self.evaluation_jobs[job_id] = Job(record)
        return respond(EvaluationJob, record)

    def _check_evaluation(self, body: dict[str, Any]) -> None:
        config, target = body["config"], body["target"]
        if config["type"] == "custom":
            for name, task in config["tasks"].items():
                if self.file(task["dataset"]["files_url"]) is None:
                    raise ContractViolation(f"task {name}: no dataset at {task['dataset']['files_url']}")
                for metric, spec in task["metrics"].items():
                    if spec["type"] == "llm-judge":
                        self._check_judge_metric(f"task {name} metric {metric}", spec["params"])
        elif config["type"] not in lm_harness_types():
            raise ContractViolation(f"evaluation type {config['type']} is not one Evaluator 25.8 runs")
        model = target["model"]["api_endpoint"]["model_id"]
        if model not in self.served():
            raise ContractViolation(f"target model {model} is not served by NIM")

    def _check_judge_metric(self, where: str, params: Mapping[str, Any]) -> None:
        """The SDK types an llm-judge metric's params as `object`; its judge is a model as a target's is (the
        SDK's ModelEvParam), its template chat messages, and every score needs a parser."""
        unknown = params.keys() - {"model", "template", "scores"}
        if unknown or not {"model", "template", "scores"} <= params.keys():
            raise ContractViolation(f"{where}: llm-judge params {sorted(params)}")
        model = validate_request(ModelEvParam, params["model"])
        judge = model["api_endpoint"]["model_id"]
        if judge not in self.judges():
            raise ContractViolation(f"{where}: judge model {judge} is not served")
        for message in params["template"]["messages"]:
            validate_request(completion_create_params.Message, message)
        for score, spec in params["scores"].items():
            if spec.get("type") not in {"int", "float"} or spec.get("parser", {}).get("type") not in {"regex", "json"}:
                raise ContractViolation(f"{where}: score {score} {spec}")

    def evaluation_job(self, request: Request, job_id: str) -> Response:
        job = self.evaluation_jobs.get(job_id) or _not_found()
        job.polls += 1
        if job.record["status"] == "created":
            job.record["status"] = "running"
        elif job.record["status"] == "running" and not self.hold_jobs:
            job.record["status"] = "completed"
        job.record["status_details"] = {"progress": 100.0 if job.record["status"] == "completed" else 50.0}
        return respond(EvaluationJob, job.record)

    def evaluation_cancel(self, request: Request, job_id: str) -> Response:
        job = self.evaluation_jobs.get(job_id) or _not_found()
        job.record["status"] = "cancelled"
        self.cancelled.append(job_id)
        return Response("{}", content_type="application/json")

    def evaluation_results(self, request: Request, job_id: str) -> Response:
        job = self.evaluation_jobs.get(job_id) or _not_found()
        if job.record["status"] != "completed":
            raise ContractViolation(f"results of {job_id} asked while it is {job.record['status']}")
        config = job.record["config"]
        model = job.record["target"]["model"]["api_endpoint"]["model_id"]
        tasks: dict[str, Any] = {}
        if config["type"] == "custom":
            benchmark = job.record["custom_fields"]["llmops_benchmark"]
            for name, task in config["tasks"].items():
                count = (self.file(task["dataset"]["files_url"]) or b"").count(b"\n")
                count = min(count, task["dataset"].get("limit") or count)
                metrics = {}
                for metric, spec in task["metrics"].items():
                    # An llm-judge metric reports each score its params define (parsed from the judge's
                    # replies); the other metrics one score named after their type.
                    names = list(spec["params"]["scores"]) if spec["type"] == "llm-judge" else [spec["type"]]
                    scores = {}
                    for score in names:
                        value = self.benchmark_score(model, benchmark, score if spec["type"] == "llm-judge" else name)
                        stats: dict[str, Any] = {"count": count, "mean": value}
                        if 0 <= value <= 1:
                            stats["stderr"] = math.sqrt(value * (1 - value) / count)
                        scores[score] = {"value": value, "stats": stats}
                    metrics[metric] = {"scores": scores}
                tasks[name] = {"metrics": metrics}
        else:
            value = self.benchmark_score(model, config["type"], config["type"])
            count = config["params"]["limit_samples"]
            stderr = math.sqrt(value * (1 - value) / count)
            scores = {"strict-match": {"value": value}, "strict-match_stderr": {"value": stderr}}
            tasks[config["type"]] = {"metrics": {"exact_match": {"scores": scores}}}
        return respond(EvaluationResult, {"job": job_id, "tasks": tasks})

    def stop(self) -> None:
        self.server.stop()


def _not_found() -> Any:
    raise NotFound()


@dataclass
class FakeNim:
    """NIM's OpenAI-compatible API: serves its base models plus, like NIM_PEFT_SOURCE, every LoRA adapter the
    Entity Store holds for them; answers come from `answer(model, messages)`."""

    gateway: Gateway
    base_models: set[str]
    answer: Callable[[str, list[dict[str, str]]], str]
    platform: FakePlatform | None = None
    violations: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = Server(self.wsgi)
        self.url = self.server.url

    def served(self) -> set[str]:
        adapters = set()
        if self.platform is not None:
            with self.platform.lock:
                adapters = {
                    key
                    for key, model in self.platform.models.items()
                    if model.get("peft") and model.get("base_model") in self.base_models
                }
        return self.base_models | adapters

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if not self.gateway.allows(request):
            return Response("missing or wrong gateway credential", status=401)(environ, start_response)
        if request.path == "/v1/models" and request.method == "GET":
            listing = {"object": "list", "data": [{"id": model, "object": "model"} for model in sorted(self.served())]}
            return Response(json.dumps(listing), content_type="application/json")(environ, start_response)
        if request.path != "/v1/chat/completions" or request.method != "POST":
            return Response("not found", status=404)(environ, start_response)
        try:
            body = validate_request(completion_create_params.CompletionCreateParamsNonStreaming, request.get_json())
        except ValidationError as exc:
            self.violations.append(str(exc))
            return Response(str(exc), status=422)(environ, start_response)
        model = body["model"]
        if model not in self.served():
            return Response(f"model {model} not found", status=404)(environ, start_response)
        self.calls.append(model)
        content = self.answer(model, body["messages"])
        response = respond(
            ChatCompletionResponse,
            {
                "id": f"chat-{len(self.calls)}",
                "model": model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )
        return response(environ, start_response)

    def stop(self) -> None:
        self.server.stop()
