"""Rules for Argo Workflows: how its server authenticates, and the pipeline templates we publish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from .common import helm_values, is_kind
from .props import chart_name, get_path, items_of, strings_of
from .rules import ADVISORY, MANDATORY, Rules
from .tokens import HELM_RELEASE

RULES = Rules()

ARGO_WORKFLOWS_CHART = "argo-workflows"
ARGO_GROUP = "argoproj.io"
TEMPLATE_KINDS = ("WorkflowTemplate", "ClusterWorkflowTemplate")
# Template types that run a pod; steps, dag and suspend only orchestrate.
_POD_TEMPLATE_KEYS = ("container", "script", "containerSet", "resource", "data", "http", "plugin")


def server_auth_modes(values: Any) -> list[str]:
    """The modes argo-server runs with: `server.authModes`, else the deprecated `server.authMode`,
    plus any `--auth-mode` in `server.extraArgs`; empty means the server's default, `client`."""
    modes = strings_of(get_path(values, "server", "authModes"))
    legacy = str(get_path(values, "server", "authMode", default="") or "")
    if not modes and legacy:
        modes = [legacy]
    args = strings_of(get_path(values, "server", "extraArgs"))
    for index, arg in enumerate(args):
        if arg.startswith("--auth-mode="):
            modes.append(arg.split("=", 1)[1])
        elif arg == "--auth-mode" and index + 1 < len(args):
            modes.append(args[index + 1])
    return modes


@RULES.resource("argo-server-auth-mode", MANDATORY)
def argo_server_auth_mode(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """argo-server does not authenticate with the `server` mode alone."""
    if args.resource_type != HELM_RELEASE or chart_name(args.props) != ARGO_WORKFLOWS_CHART:
        args.not_applicable("not an argo-workflows release")
    modes = server_auth_modes(helm_values(args.props))
    if modes and set(modes) == {"server"}:
        report_violation(
            f"Argo Workflows release {args.name!r} runs argo-server with auth mode `server` only: every "
            "caller acts as the server's ServiceAccount. Use `sso` and/or `client`.",
            None,
        )


def _template_spec(args: ResourceValidationArgs) -> Any:
    if not is_kind(args.resource_type, ARGO_GROUP, *TEMPLATE_KINDS):
        args.not_applicable("not a WorkflowTemplate or ClusterWorkflowTemplate")
    return get_path(args.props, "spec", default={})


def _pod_templates(spec: Any) -> list[Any]:
    return [
        t for t in items_of(get_path(spec, "templates")) if any(get_path(t, k) is not None for k in _POD_TEMPLATE_KEYS)
    ]


def _runnable(spec: Any) -> bool:
    """A template with an entrypoint runs as a workflow; one without is a library of steps that
    workflows call through templateRef, where only the template-level fields apply."""
    return bool(get_path(spec, "entrypoint"))


def _uncovered(spec: Any, field: str, present: Callable[[Any], bool]) -> list[str] | None:
    """Names of the pod-running templates that get no `field`: from the workflow spec, from
    templateDefaults or from themselves. None when the spec or templateDefaults covers them all."""
    if present(get_path(spec, field)) or present(get_path(spec, "templateDefaults", field)):
        return None
    return [str(get_path(t, "name")) for t in _pod_templates(spec) if not present(get_path(t, field))]


def _deadline_set(value: Any) -> bool:
    return value is not None and str(value) not in ("", "0")


@RULES.resource("workflow-template-active-deadline", MANDATORY)
def workflow_template_active_deadline(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Workflow templates bound their run time with activeDeadlineSeconds (the whole workflow, or each step of a
    template library)."""
    spec = _template_spec(args)
    if _runnable(spec):
        if not _deadline_set(get_path(spec, "activeDeadlineSeconds")):
            report_violation(
                f"{args.name!r} runs as a workflow but sets no spec.activeDeadlineSeconds; a stuck fine-tuning "
                "step would hold its GPUs forever.",
                None,
            )
        return
    missing = _uncovered(spec, "activeDeadlineSeconds", _deadline_set)
    if missing:
        report_violation(
            f"{args.name!r}: template(s) {', '.join(missing)} set no activeDeadlineSeconds (nor does "
            "templateDefaults); a stuck step would hold its node, or its GPU, forever.",
            None,
        )


def _retry_set(value: Any) -> bool:
    return value is not None


@RULES.resource("workflow-template-retry-strategy", ADVISORY)
def workflow_template_retry_strategy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Pod-running steps of workflow templates retry transient failures (retryStrategy)."""
    spec = _template_spec(args)
    missing = _uncovered(spec, "retryStrategy", _retry_set)
    if missing:
        report_violation(
            f"{args.name!r}: template(s) {', '.join(missing)} set no retryStrategy; a spot eviction or a "
            "transient API error fails the whole pipeline.",
            None,
        )


@RULES.resource("workflow-template-pod-gc", MANDATORY)
def workflow_template_pod_gc(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Workflow templates that run as workflows garbage-collect their pods (podGC.strategy)."""
    spec = _template_spec(args)
    if not _runnable(spec):
        args.not_applicable("a template library; podGC belongs to the workflows that call it")
    if not get_path(spec, "podGC", "strategy"):
        report_violation(
            f"{args.name!r} sets no podGC.strategy; finished pods pile up in the namespace.",
            None,
        )


POLICIES = RULES.policies
