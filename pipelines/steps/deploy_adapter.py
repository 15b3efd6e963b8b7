"""Make a LoRA adapter servable: check its Entity Store model, wait until NIM lists it, record promotion.

NIM loads adapters from the Entity Store (NIM_PEFT_SOURCE) on its refresh interval, so there is
nothing to push: the step proves the adapter is there and served. With --promote true it also stamps
the model entity's custom_fields, so the Entity Store says which adapter passed the gate and when
(PATCH /v1/models/{namespace}/{name} replaces custom_fields, hence the read-merge-write;
https://docs.nvidia.com/nemo/microservices/latest/manage-entities/models/update-model.html).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pipelines.steps._common import StepError, add_output_dir, add_service_url, parser_for, write_outputs
from pipelines.steps._http import Backoff, ServiceClient, poll

log = logging.getLogger(__name__)


def model_entity(entity_store: ServiceClient, model: str) -> dict[str, Any]:
    """The Entity Store record for "namespace/name" (the Customizer's output_model)."""
    if model.count("/") != 1:
        raise StepError(f"adapter id must be namespace/name, got {model!r}")
    response = entity_store.request("GET", f"/v1/models/{model}", accept=(200, 404))
    if response.status_code == 404:
        raise StepError(f"model entity {model} does not exist in the Entity Store")
    entity: dict[str, Any] = response.json()
    return entity


def served_models(nim: ServiceClient) -> set[str]:
    listing = nim.json("GET", "/v1/models")
    return {str(entry.get("id")) for entry in listing.get("data", [])}


def wait_until_served(nim: ServiceClient, model: str, backoff: Backoff) -> None:
    def listed(models: set[str]) -> bool:
        if model not in models:
            log.info("NIM does not list %s yet (%d models listed)", model, len(models))
        return model in models

    poll(lambda: served_models(nim), listed, backoff, f"NIM to list {model}")


def promote(entity_store: ServiceClient, model: str, entity: dict[str, Any], workflow: str) -> None:
    custom_fields = {
        **(entity.get("custom_fields") or {}),
        "llmops_promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "llmops_promoted_by": workflow,
    }
    entity_store.request("PATCH", f"/v1/models/{model}", json={"custom_fields": custom_fields})
    log.info("recorded promotion of %s by %s", model, workflow)


def main(argv: Sequence[str]) -> int:
    parser = parser_for("deploy-adapter", "Verify a LoRA adapter is registered and served by NIM.")
    parser.add_argument("--model", required=True, help="adapter id, namespace/name (customize's output-model)")
    parser.add_argument(
        "--promote", choices=("true", "false"), default="false", help="record the promotion on the model entity"
    )
    parser.add_argument("--workflow", default="", help="who promotes, recorded with --promote true")
    parser.add_argument("--timeout-seconds", type=float, default=1200)
    parser.add_argument("--poll-initial-seconds", type=float, default=10)
    parser.add_argument("--poll-max-seconds", type=float, default=60)
    add_service_url(parser, "--entity-store-url", "ENTITY_STORE_URL", "NeMo Entity Store")
    add_service_url(parser, "--nim-url", "NIM_URL", "NIM")
    add_output_dir(parser)
    args = parser.parse_args(argv)

    backoff = Backoff(args.timeout_seconds, args.poll_initial_seconds, args.poll_max_seconds)
    with ServiceClient(args.entity_store_url) as entity_store, ServiceClient(args.nim_url) as nim:
        entity = model_entity(entity_store, args.model)
        wait_until_served(nim, args.model, backoff)
        if args.promote == "true":
            promote(entity_store, args.model, entity, args.workflow)
    write_outputs(args.output_dir, {"model-id": args.model})
    return 0
