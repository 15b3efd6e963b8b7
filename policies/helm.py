"""Rules for Helm releases: reproducible, atomic installs from known repositories."""

from __future__ import annotations

import re

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from policies.common import HELM_RELEASE, get_path

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")


def _pinned_version(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != HELM_RELEASE:
        args.not_applicable("not a Helm release")
    version = get_path(args.props, "version", default="")
    if not _EXACT_VERSION.match(str(version)):
        report_violation(
            f"Helm release {args.name!r} must pin an exact chart version (got {version or 'none'!r}); "
            "a floating version changes what `pulumi up` installs without a code change.",
            None,
        )


helm_release_pins_version = ResourceValidationPolicy(
    name="helm-release-pins-version",
    description="Every Helm release pins an exact chart version.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_pinned_version,
)
