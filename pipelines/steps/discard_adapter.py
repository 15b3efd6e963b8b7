"""Delete a candidate the gate did not accept, so NIM stops serving it.

NIM serves every adapter in the Entity Store (NIM_PEFT_SOURCE) and drops the ones that disappear on its
next refresh: deleting the model entity is what takes the candidate out of service. The step then waits
until NIM no longer lists it on --consecutive checks in a row, and records the deletion on the workflow's
MLflow run.
https://docs.nvidia.com/nemo/microservices/25.8.0/manage-entities/models/delete-model.html
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipelines.steps._common import StepError, add_output_dir, parser_for, write_outputs
from pipelines.steps._http import NotFound, ServiceClient, nemo_client, nemo_errors
from pipelines.steps.deploy_adapter import add_adapter_service_arguments, split_model_id, wait_for_listing

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    parser = parser_for(
        "discard-adapter", "Delete a rejected adapter from the Entity Store and wait until NIM drops it."
    )
    parser.add_argument("--model", required=True, help="adapter id, namespace/name (customize's output-model)")
    parser.add_argument("--workflow-uid", default="")
    parser.add_argument("--mlflow-experiment", default="", help="record the deletion on the workflow's run")
    parser.add_argument("--mlflow-run-name", default="")
    add_adapter_service_arguments(parser)
    add_output_dir(parser)
    args = parser.parse_args(argv)

    namespace, name = split_model_id(args.model)
    with nemo_client(args.entity_store_url) as entity_store, ServiceClient(args.nim_url) as nim:
        try:
            with nemo_errors(f"deleting model {args.model}"):
                entity_store.models.delete(name, namespace=namespace)
            log.info("deleted %s from the Entity Store", args.model)
        except NotFound:
            log.info("%s is not in the Entity Store (deleted by an earlier attempt)", args.model)
        wait_for_listing(
            nim,
            args.model,
            listed=False,
            needed=args.consecutive,
            interval=args.interval_seconds,
            timeout=args.timeout_seconds,
        )
    if args.mlflow_experiment:
        if not (args.tracking_uri and args.workflow_uid):
            raise StepError("--mlflow-experiment needs --workflow-uid and a tracking URI")
        from pipelines.steps.log_to_mlflow import tag_run

        tag_run(
            args.tracking_uri,
            experiment=args.mlflow_experiment,
            workflow_uid=args.workflow_uid,
            run_name=args.mlflow_run_name or args.model,
            tags={"adapter_deleted": args.model},
        )
    write_outputs(args.output_dir, {"deleted": args.model})
    return 0
