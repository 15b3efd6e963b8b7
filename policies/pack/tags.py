"""Rules for Azure tags: every taggable resource says which environment, owner and budget it belongs to."""

from __future__ import annotations

from pulumi_policy import PolicyConfigSchema, ReportViolation, ResourceValidationArgs

from .common import knobs
from .props import get_path, is_mapping
from .rules import MANDATORY, Rules, strings_knob

RULES = Rules()

# Types that take tags but might be declared without them (child resources such as subnets, role
# assignments or databases take none); a resource that passes `tags` is checked whatever its type.
TAGGABLE_TYPES = [
    "azure-native:resources:ResourceGroup",
    "azure-native:network:VirtualNetwork",
    "azure-native:network:PublicIPAddress",
    "azure-native:network:NetworkSecurityGroup",
    "azure-native:network:PrivateEndpoint",
    "azure-native:privatedns:PrivateZone",
    "azure-native:operationalinsights:Workspace",
    "azure-native:managedidentity:UserAssignedIdentity",
    "azure-native:containerservice:ManagedCluster",
    "azure-native:containerservice:AgentPool",
    "azure-native:storage:StorageAccount",
    "azure-native:dbforpostgresql:Server",
    "azure-native:keyvault:Vault",
    "azure-native:containerregistry:Registry",
]

_TAGS_SCHEMA = PolicyConfigSchema(
    properties={
        "requiredTags": strings_knob(
            ["environment", "owner", "cost-center"],
            "Tags every taggable Azure resource carries, with a non-empty value.",
        ),
        "taggableTypes": strings_knob(
            TAGGABLE_TYPES, "Azure types that must carry tags even when declared without any."
        ),
    }
)


@RULES.resource("azure-required-tags", MANDATORY, _TAGS_SCHEMA)
def azure_required_tags(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Taggable Azure resources carry the required tags (environment, owner, cost-center)."""
    if not args.resource_type.startswith("azure-native:"):
        args.not_applicable("not an Azure resource")
    config = knobs(args, _TAGS_SCHEMA)
    tags = get_path(args.props, "tags")
    if tags is None and args.resource_type not in config["taggableTypes"]:
        args.not_applicable("resource type takes no tags")
    tags = tags if is_mapping(tags) else {}
    missing = [tag for tag in config["requiredTags"] if not str(get_path(tags, tag, default="") or "").strip()]
    if missing:
        report_violation(f"Azure resource {args.name!r} lacks the tag(s) {', '.join(missing)}.", None)


POLICIES = RULES.policies
