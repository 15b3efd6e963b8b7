"""Rules for Azure Database for PostgreSQL flexible servers (the MLflow backend store)."""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs

from .common import ENVIRONMENT_KNOBS, knobs, resource_environment
from .props import get_path
from .rules import MANDATORY, Rules, knob, only
from .tokens import POSTGRES_SERVER

RULES = Rules()

POSTGRES_CONFIGURATION = "azure-native:dbforpostgresql:Configuration"
POSTGRES_FIREWALL_RULE = "azure-native:dbforpostgresql:FirewallRule"
# Flexible server's own default when `backup.backupRetentionDays` is not set.
AZURE_DEFAULT_RETENTION_DAYS = 7
_WEAK_TLS = ("tlsv1", "tlsv1.0", "tlsv1.1")


def _only_servers(args: ResourceValidationArgs) -> None:
    only(args, "not a PostgreSQL flexible server", POSTGRES_SERVER)


@RULES.resource("postgres-require-secure-transport", MANDATORY)
def postgres_require_secure_transport(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """PostgreSQL servers keep require_secure_transport on and TLS 1.2 as the minimum."""
    only(args, "not a PostgreSQL server parameter", POSTGRES_CONFIGURATION)
    parameter = str(get_path(args.props, "configurationName", default="") or args.name).lower()
    value = str(get_path(args.props, "value", default="") or "").strip().lower()
    if parameter == "require_secure_transport" and value in ("off", "false", "0"):
        report_violation(
            f"Server parameter {args.name!r} turns require_secure_transport off; clients could connect "
            "without TLS and send the MLflow database password in clear.",
            None,
        )
    elif parameter == "ssl_min_protocol_version" and value in _WEAK_TLS:
        report_violation(f"Server parameter {args.name!r} allows {value!r}; require TLSv1.2 or newer.", None)


_RETENTION_SCHEMA = PolicyConfigSchema(
    properties={"minRetentionDays": knob("integer", 7, "Shortest point-in-time restore window allowed.")}
)


@RULES.resource("postgres-backup-retention", MANDATORY, _RETENTION_SCHEMA)
def postgres_backup_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """PostgreSQL servers keep at least 7 days of backups."""
    _only_servers(args)
    minimum = int(knobs(args, _RETENTION_SCHEMA)["minRetentionDays"])
    days = int(get_path(args.props, "backup", "backupRetentionDays", default=AZURE_DEFAULT_RETENTION_DAYS))
    if days < minimum:
        report_violation(
            f"PostgreSQL server {args.name!r} keeps backups for {days} day(s); at least {minimum} are required.",
            None,
        )


_GEO_SCHEMA = PolicyConfigSchema(properties=dict(ENVIRONMENT_KNOBS))


@RULES.resource("postgres-geo-redundant-backup-in-prod", MANDATORY, _GEO_SCHEMA)
def postgres_geo_redundant_backup_in_prod(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Production PostgreSQL servers keep geo-redundant backups."""
    _only_servers(args)
    config = knobs(args, _GEO_SCHEMA)
    environment = resource_environment(args, config)
    if environment not in config["productionEnvironments"]:
        args.not_applicable(f"environment {environment or 'unknown'!r} is not production")
    if get_path(args.props, "backup", "geoRedundantBackup", default="Disabled") != "Enabled":
        report_violation(
            f"PostgreSQL server {args.name!r} in {environment} must set backup.geoRedundantBackup 'Enabled' "
            "(fixed at creation); a regional outage would otherwise lose the experiment history.",
            None,
        )


@RULES.resource("postgres-no-open-firewall", MANDATORY)
def postgres_no_open_firewall(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """PostgreSQL firewall rules open neither the internet nor all of Azure."""
    only(args, "not a PostgreSQL firewall rule", POSTGRES_FIREWALL_RULE)
    start = str(get_path(args.props, "startIpAddress", default=""))
    end = str(get_path(args.props, "endIpAddress", default=""))
    if start == "0.0.0.0" and end == "255.255.255.255":
        report_violation(f"Firewall rule {args.name!r} opens the server to the whole internet.", None)
    elif start == "0.0.0.0" and end == "0.0.0.0":
        report_violation(
            f"Firewall rule {args.name!r} admits every Azure service of every tenant; allow the cluster's "
            "egress addresses or use VNet integration.",
            None,
        )


POLICIES = RULES.policies
