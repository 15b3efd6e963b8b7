"""Rules for Helm releases: reproducible, atomic installs from known repositories, pinned images."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs, StackValidationArgs

from .common import helm_values, image_tag_problem, knobs
from .props import chart_name, get_path, is_mapping, walk
from .rules import MANDATORY, Rules, only, strings_knob
from .tokens import HELM_CHART, HELM_RELEASE

RULES = Rules()

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


def _only_releases(args: ResourceValidationArgs) -> None:
    only(args, "not a Helm release", HELM_RELEASE)


@RULES.resource("helm-release-pins-version", MANDATORY)
def helm_release_pins_version(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every Helm release pins an exact chart version."""
    _only_releases(args)
    version = get_path(args.props, "version", default="")
    if not _EXACT_VERSION.match(str(version)):
        report_violation(
            f"Helm release {args.name!r} must pin an exact chart version (got {version or 'none'!r}); "
            "a floating version changes what `pulumi up` installs without a code change.",
            None,
        )


@RULES.resource("helm-release-atomic", MANDATORY)
def helm_release_atomic(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every Helm release is atomic, cleans up on failure and sets a timeout."""
    _only_releases(args)
    missing = [key for key in ("atomic", "cleanupOnFail") if get_path(args.props, key) is not True]
    timeout = get_path(args.props, "timeout")
    if not isinstance(timeout, int | float) or timeout <= 0:
        missing.append("timeout")
    if missing:
        report_violation(
            f"Helm release {args.name!r} must set {', '.join(missing)}: a failed install rolls back and "
            "cleans up instead of leaving a half-installed release behind.",
            None,
        )


ALLOWED_REPOSITORIES = [
    "https://argoproj.github.io/argo-helm",
    "https://helm.ngc.nvidia.com/nvidia",
    "https://helm.ngc.nvidia.com/nvidia/nemo-microservices",
    "https://helm.ngc.nvidia.com/nim",
    "https://volcano-sh.github.io/helm-charts",
    "oci://docker.io/envoyproxy",
    "https://community-charts.github.io/helm-charts",
    "https://charts.jetstack.io",
    "oci://quay.io/jetstack/charts",
]

_REPOSITORY_SCHEMA = PolicyConfigSchema(
    properties={
        "allowedRepositories": strings_knob(
            ALLOWED_REPOSITORIES,
            "Chart repositories (https or oci) releases may install from; compared exactly.",
        )
    }
)


def _normalized(url: str) -> str:
    return url.strip().rstrip("/").lower()


def release_repository(props: Any) -> str:
    """Where the chart comes from: `repositoryOpts.repo`, or the registry path of an `oci://` chart."""
    repository = str(get_path(props, "repositoryOpts", "repo", default="") or "")
    if repository:
        return repository
    chart = str(get_path(props, "chart", default="") or "")
    if chart.startswith("oci://"):
        return chart.rstrip("/").rsplit("/", 1)[0]
    return ""


@RULES.resource("helm-release-allowed-repository", MANDATORY, _REPOSITORY_SCHEMA)
def helm_release_allowed_repository(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every Helm release installs from an allowed chart repository."""
    _only_releases(args)
    allowed = {_normalized(url) for url in knobs(args, _REPOSITORY_SCHEMA)["allowedRepositories"]}
    repository = release_repository(args.props)
    if not repository:
        report_violation(
            f"Helm release {args.name!r} names no chart repository (repositoryOpts.repo or an oci:// chart).",
            None,
        )
    elif _normalized(repository) not in allowed:
        report_violation(
            f"Helm release {args.name!r} installs from {repository!r}, which is not an allowed chart "
            "repository (policy config allowedRepositories).",
            None,
        )


_IMAGE_TAG_SCHEMA = PolicyConfigSchema(
    properties={
        "chartsTaggingTheirImage": strings_knob(
            ["nim-llm"],
            "Charts whose `image.repository` is the model being served: overriding it without "
            "`image.tag` would run the chart's default tag against another image.",
        )
    }
)


def helm_image_problems(values: Any, tag_with_repository: bool = False) -> list[str]:
    """Image values that are not pinned: an `image`/`images` map with tag `latest`; a full image
    reference string (`registry/name[:tag]`) tagged `latest` or untagged; and, where the chart needs
    it, an `image.repository` override without a tag. Elsewhere a repository override keeps the
    chart's pinned default tag (e.g. redirecting a subchart to a mirror)."""
    problems = []
    for path, key, value in walk(values, needed=frozenset({"image", "images", "tag", "repository", "digest"})):
        if key not in ("image", "images"):
            continue
        where = ".".join((*path, key))
        if is_mapping(value):
            tag = str(get_path(value, "tag", default="") or "")
            pinned = tag or get_path(value, "digest") or "@" in str(get_path(value, "repository", default=""))
            if tag.lower() == "latest":
                problems.append(f"{where}.tag is 'latest'")
            elif tag_with_repository and not path and get_path(value, "repository") and not pinned:
                problems.append(f"{where}.repository is overridden without {where}.tag")
        elif isinstance(value, str) and "/" in value:
            problem = image_tag_problem(value)
            if problem:
                problems.append(f"{where} {value!r} {problem}")
    return problems


@RULES.resource("helm-release-image-tags-pinned", MANDATORY, _IMAGE_TAG_SCHEMA)
def helm_release_image_tags_pinned(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Image values of Helm releases (`image.tag`, `*.image.tag`) are pinned, never `latest`."""
    _only_releases(args)
    strict = chart_name(args.props) in knobs(args, _IMAGE_TAG_SCHEMA)["chartsTaggingTheirImage"]
    problems = helm_image_problems(helm_values(args.props), tag_with_repository=strict)
    if problems:
        report_violation(f"Helm release {args.name!r}: {'; '.join(problems)}.", None)


# Charts whose CRDs live in a chart of their own, which Pulumi applies (and so upgrades) before the release.
CRD_CHARTS = {"gateway-helm": "gateway-crds-helm"}


@RULES.stack("helm-crds-upgrade-with-chart", MANDATORY)
def helm_crds_upgrade_with_chart(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A release whose chart ships CRDs Helm would never upgrade (Envoy Gateway's gateway-helm) skips them and depends
    on that chart's CRD chart (gateway-crds-helm) at the same version."""
    for resource in args.resources:
        if resource.resource_type != HELM_RELEASE or chart_name(resource.props) not in CRD_CHARTS:
            continue
        crd_chart = CRD_CHARTS[chart_name(resource.props)]
        version = get_path(resource.props, "version")
        problems = []
        if get_path(resource.props, "skipCrds") is not True:
            problems.append("does not set skip_crds")
        if get_path(helm_values(resource.props), "crds", "enabled") is not False:
            problems.append("does not set crds.enabled: false")
        if not any(
            dependency.resource_type == HELM_CHART
            and chart_name(dependency.props) == crd_chart
            and get_path(dependency.props, "version") == version
            for dependency in resource.dependencies
        ):
            problems.append(f"does not depend on a {crd_chart} Chart at version {version}")
        if problems:
            report_violation(
                f"Helm release {resource.name!r} ({chart_name(resource.props)}) {', '.join(problems)}: Helm installs a "
                f"chart's CRDs once and never upgrades them, so a version bump would leave them behind; install them "
                f"with {crd_chart} (helm.v4.Chart, applied server-side) before the release.",
                None,
            )


POLICIES = RULES.policies
