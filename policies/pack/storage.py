"""Rules for Azure storage accounts (MLflow artifacts, datasets, model files)."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from .props import get_path
from .rules import MANDATORY, Rules, only
from .tokens import STORAGE_ACCOUNT

RULES = Rules()

BLOB_CONTAINER = "azure-native:storage:BlobContainer"
_MODERN_TLS = ("TLS1_2", "TLS1_3")


def _only_accounts(args: ResourceValidationArgs) -> None:
    only(args, "not a storage account", STORAGE_ACCOUNT)


@RULES.resource("storage-account-secure-transport", MANDATORY)
def storage_account_secure_transport(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Storage accounts accept HTTPS only, with TLS 1.2 or newer."""
    _only_accounts(args)
    problems = []
    # Azure's default is HTTPS-only; only an explicit false opens plain HTTP.
    if get_path(args.props, "enableHttpsTrafficOnly") is False:
        problems.append("enableHttpsTrafficOnly is false")
    tls = get_path(args.props, "minimumTlsVersion")
    if tls not in _MODERN_TLS:
        problems.append(f"minimumTlsVersion is {tls or 'unset (TLS1_0 on older API versions)'!r}")
    if problems:
        report_violation(
            f"Storage account {args.name!r}: {'; '.join(problems)}; require HTTPS with TLS 1.2 or newer.", None
        )


@RULES.resource("storage-no-public-blob-access", MANDATORY)
def storage_no_public_blob_access(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Storage accounts forbid anonymous blob access and no container allows it."""
    if args.resource_type == STORAGE_ACCOUNT:
        if get_path(args.props, "allowBlobPublicAccess") is not False:
            report_violation(
                f"Storage account {args.name!r} must set allowBlobPublicAccess false; otherwise one container "
                "setting away from publishing training data.",
                None,
            )
    elif args.resource_type == BLOB_CONTAINER:
        access = get_path(args.props, "publicAccess", default="None")
        if access != "None":
            report_violation(f"Blob container {args.name!r} allows anonymous {access!r} access.", None)
    else:
        args.not_applicable("not a storage account or blob container")


@RULES.resource("storage-account-no-shared-key", MANDATORY)
def storage_account_no_shared_key(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Storage accounts disable shared key (account key) authorization."""
    _only_accounts(args)
    if get_path(args.props, "allowSharedKeyAccess") is not False:
        report_violation(
            f"Storage account {args.name!r} must set allowSharedKeyAccess false: workloads use Entra ID "
            "(workload identity), and an account key is a credential that never expires.",
            None,
        )


POLICIES = RULES.policies
