"""Mocks that answer like Azure and Kubernetes would, and a monitor that records every registration.

Realistic computed outputs (names, ids, FQDNs, principal ids) matter: values derived from them
stay known, so dependency edges and derived config survive into the plan.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import get_project, get_stack

from policies.pack.record import Registration
from policies.pack.tokens import HELM_RELEASE

RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
SUBSCRIPTION_ID = "00000000-0000-4000-8000-000000000000"
TENANT_ID = "00000000-0000-4000-8000-00000000aaaa"

# azure-native type token -> (ARM provider namespace/type, input that carries the name)
_ARM_TYPES: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": ("", "resourceGroupName"),
    "azure-native:network:VirtualNetwork": ("Microsoft.Network/virtualNetworks", "virtualNetworkName"),
    "azure-native:network:Subnet": ("Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets", "subnetName"),
    "azure-native:network:PublicIPAddress": ("Microsoft.Network/publicIPAddresses", "publicIpAddressName"),
    "azure-native:network:PublicIPPrefix": ("Microsoft.Network/publicIPPrefixes", "publicIpPrefixName"),
    "azure-native:network:NatGateway": ("Microsoft.Network/natGateways", "natGatewayName"),
    "azure-native:app:ManagedEnvironment": ("Microsoft.App/managedEnvironments", "environmentName"),
    "azure-native:app:Job": ("Microsoft.App/jobs", "jobName"),
    "azure-native:operationalinsights:Workspace": ("Microsoft.OperationalInsights/workspaces", "workspaceName"),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "resourceName",
    ),
    "azure-native:managedidentity:FederatedIdentityCredential": (
        "Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}/federatedIdentityCredentials",
        "federatedIdentityCredentialResourceName",
    ),
    "azure-native:containerservice:ManagedCluster": ("Microsoft.ContainerService/managedClusters", "resourceName"),
    "azure-native:containerservice:AgentPool": (
        "Microsoft.ContainerService/managedClusters/{resourceName}/agentPools",
        "agentPoolName",
    ),
    "azure-native:containerservice:MaintenanceConfiguration": (
        "Microsoft.ContainerService/managedClusters/{resourceName}/maintenanceConfigurations",
        "configName",
    ),
    "azure-native:storage:StorageAccount": ("Microsoft.Storage/storageAccounts", "accountName"),
    "azure-native:storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers",
        "containerName",
    ),
    "azure-native:dbforpostgresql:Server": ("Microsoft.DBforPostgreSQL/flexibleServers", "serverName"),
    "azure-native:dbforpostgresql:Database": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/databases",
        "databaseName",
    ),
    "azure-native:dbforpostgresql:FirewallRule": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/firewallRules",
        "firewallRuleName",
    ),
    "azure-native:dbforpostgresql:Configuration": (
        "Microsoft.DBforPostgreSQL/flexibleServers/{serverName}/configurations",
        "configurationName",
    ),
    "azure-native:authorization:RoleAssignment": ("Microsoft.Authorization/roleAssignments", "roleAssignmentName"),
    "azure-native:storage:BlobServiceProperties": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices",
        "blobServicesName",
    ),
    "azure-native:network:PrivateEndpoint": ("Microsoft.Network/privateEndpoints", "privateEndpointName"),
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups",
        "privateDnsZoneGroupName",
    ),
    "azure-native:privatedns:PrivateZone": ("Microsoft.Network/privateDnsZones", "privateZoneName"),
    "azure-native:dns:Zone": ("Microsoft.Network/dnsZones", "zoneName"),
    "azure-native:dns:RecordSet": ("Microsoft.Network/dnsZones/{zoneName}/{recordType}", "relativeRecordSetName"),
    "azure-native:privatedns:PrivateRecordSet": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/{recordType}",
        "relativeRecordSetName",
    ),
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks",
        "virtualNetworkLinkName",
    ),
}


def _uuid_from(seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}"


def _plain(value: Any) -> Any:
    """A string input as the mock sees it (secrets unwrapped), or None when unknown."""
    if rpc.is_rpc_secret(value):
        value = rpc.unwrap_rpc_secret(value)
    return value if isinstance(value, str) else None


def _exec_kubeconfig(cluster: str, server: str) -> str:
    """The shape AKS returns for `format=exec`: kubelogin with device-code login."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": cluster, "cluster": {"server": server, "certificate-authority-data": "TU9DSy1DQQ=="}}
            ],
            "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": f"clusterUser_{cluster}"}}],
            "current-context": cluster,
            "users": [
                {
                    "name": f"clusterUser_{cluster}",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "kubelogin",
                            "args": [
                                "get-token",
                                "--login",
                                "devicecode",
                                "--server-id",
                                "6dae42f8-4368-4678-94ff-3960e28e3630",
                            ],
                        }
                    },
                }
            ],
        }
    )


def _secret(value: Any) -> dict[str, Any]:
    """A value marked secret on the wire, as the engine returns an output named in additionalSecretOutputs."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def _random_password(logical: str, inputs: dict[str, Any]) -> tuple[str, dict]:
    """What pulumi-random answers: `result` (and its bcrypt hash) secret, drawn from the classes the inputs allow,
    at the asked length; stable per resource name so plans compare."""
    length = int(inputs.get("length") or 16)
    special = _plain(inputs.get("overrideSpecial")) or ("!@#$%&*()-_=+[]{}<>:?" if inputs.get("special", True) else "")
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789" + (special if inputs.get("special") else "")
    digest = hashlib.sha256(f"random/{logical}".encode()).digest() * (length // 32 + 1)
    result = "".join(alphabet[b % len(alphabet)] for b in digest[:length])
    state = {**inputs, "result": _secret(result), "bcryptHash": _secret("$2a$10$" + "m" * 53)}
    return f"{logical}-none", state


class PlanMocks(pulumi_mocks.Mocks):
    def __init__(self) -> None:
        self.unanswered_calls: list[str] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        if args.typ.startswith("azure-native:"):
            return self._azure(args.typ, args.name, inputs)
        if args.typ == HELM_RELEASE:
            release = _plain(inputs.get("name")) or args.name
            namespace = _plain(inputs.get("namespace")) or "default"
            status = {
                "name": release,
                "namespace": namespace,
                "status": "deployed",
                "revision": 1,
                "chart": _plain(inputs.get("chart")),
                "version": _plain(inputs.get("version")),
            }
            return f"{namespace}/{release}", {**inputs, "status": status}
        if args.typ == RANDOM_PASSWORD:
            return _random_password(args.name, inputs)
        if args.typ.startswith("kubernetes:"):
            metadata = inputs.get("metadata") or {}
            name = _plain(metadata.get("name")) if isinstance(metadata, dict) else None
            namespace = _plain(metadata.get("namespace")) if isinstance(metadata, dict) else None
            return f"{namespace + '/' if namespace else ''}{name or args.name}", inputs
        return f"{args.name}-id", inputs

    def _azure(self, typ: str, logical: str, inputs: dict[str, Any]) -> tuple[str, dict]:
        arm_type, name_key = _ARM_TYPES.get(typ, ("", "name"))
        name = _plain(inputs.get(name_key)) or f"{logical}{hashlib.sha256(logical.encode()).hexdigest()[:8]}"
        group = _plain(inputs.get("resourceGroupName")) or name
        if typ == "azure-native:resources:ResourceGroup":
            resource_id = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{name}"
        elif typ == "azure-native:authorization:RoleAssignment":
            name = _uuid_from(logical)
            resource_id = f"{_plain(inputs.get('scope')) or ''}/providers/{arm_type}/{name}"
        else:
            path = arm_type.format(**{k: _plain(v) or "unknown" for k, v in inputs.items()})
            resource_id = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/{path}/{name}"
        location = _plain(inputs.get("location")) or "westeurope"
        state: dict[str, Any] = {**inputs, "name": name, "id": resource_id, "type": arm_type}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Inputs list the identity ids; ARM answers with a map of id -> principal.
            state["identity"] = {
                **identity,
                "userAssignedIdentities": {
                    str(i): {"principalId": _uuid_from(str(i)), "clientId": _uuid_from(str(i) + "client")}
                    for i in identity["userAssignedIdentities"]
                },
            }
        if typ == "azure-native:containerservice:ManagedCluster":
            prefix = _plain(inputs.get("dnsPrefix")) or name
            state["fqdn"] = f"{prefix}-{_uuid_from(name)[:8]}.hcp.{location}.azmk8s.io"
            state["privateFQDN"] = f"{prefix}-{_uuid_from(name)[:8]}.privatelink.{location}.azmk8s.io"
            state["oidcIssuerProfile"] = {
                "enabled": True,
                "issuerURL": f"https://{location}.oic.prod-aks.azure.com/{TENANT_ID}/{_uuid_from(name)}/",
            }
            state["identityProfile"] = {
                "kubeletidentity": {
                    "objectId": _uuid_from(name + "kubelet"),
                    "clientId": _uuid_from(name + "kubelet-client"),
                }
            }
        elif typ == "azure-native:managedidentity:UserAssignedIdentity":
            state.update(
                principalId=_uuid_from(name + "principal"), clientId=_uuid_from(name + "client"), tenantId=TENANT_ID
            )
        elif typ == "azure-native:storage:StorageAccount":
            state["primaryEndpoints"] = {
                "blob": f"https://{name}.blob.core.windows.net/",
                "file": f"https://{name}.file.core.windows.net/",
            }
        elif typ == "azure-native:dbforpostgresql:Server":
            state["fullyQualifiedDomainName"] = f"{name}.postgres.database.azure.com"
        elif typ == "azure-native:network:PublicIPAddress":
            state["ipAddress"] = "198.51.100.7"
        elif typ == "azure-native:dns:Zone":
            state["nameServers"] = [f"ns{i}-01.azure-dns.com." for i in range(1, 5)]
        elif typ == "azure-native:network:PublicIPPrefix":
            # A documentation range (RFC 5737), distinct per prefix so allowlists show which one they admit.
            length = inputs.get("prefixLength")
            octet = int(hashlib.sha256(name.encode()).hexdigest(), 16) % 64 * 4
            state["ipPrefix"] = f"192.0.2.{octet}/{int(length) if isinstance(length, int | float) else 31}"
        return resource_id, state

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": _uuid_from("client"),
                "objectId": _uuid_from("object"),
                "subscriptionId": SUBSCRIPTION_ID,
                "tenantId": TENANT_ID,
            }, []
        if args.token == "azure-native:managedidentity:getUserAssignedIdentity":
            # An identity that exists outside the stack (the CI deploy identity), answered as ARM would.
            group = _plain(args.args.get("resourceGroupName")) or "rg"
            name = _plain(args.args.get("resourceName")) or "identity"
            return {
                "id": f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{group}/providers/"
                f"Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
                "name": name,
                "principalId": _uuid_from(name + "principal"),
                "clientId": _uuid_from(name + "client"),
                "tenantId": TENANT_ID,
                "location": "westeurope",
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            }, []
        if args.token == "azure-native:containerservice:listManagedClusterUserCredentials":
            cluster = _plain(args.args.get("resourceName")) or "cluster"
            location_hint = "westeurope"
            server = f"https://{cluster}-{_uuid_from(cluster)[:8]}.hcp.{location_hint}.azmk8s.io:443"
            encoded = base64.b64encode(_exec_kubeconfig(cluster, server).encode()).decode()
            return {"kubeconfigs": [{"name": "clusterUser", "value": encoded}]}, []
        self.unanswered_calls.append(args.token)
        return {}, []


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """Records what `MockResourceArgs` leaves out: parent, provider, dependencies and options."""

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.component_outputs: dict[str, dict[str, Any]] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # As the engine does: a child's qualified type is its parent's whole chain, not just the parent's type.
        if parent:
            type_ = parent.split("::")[2] + "$" + type_
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        state = self.resources[response.urn].state if response.urn in self.resources else {}
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                # Sorted: the SDK gathers them from sets, so their order means nothing and changes from run to run.
                dependencies=sorted(request.dependencies),
                property_dependencies={k: sorted(v.urns) for k, v in sorted(request.propertyDependencies.items())},
                protect=request.protect if request.HasField("protect") else False,
                ignore_changes=list(request.ignoreChanges),
                custom=request.custom,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                outputs=state,
            )
        )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.component_outputs[request.urn] = rpc.deserialize_properties(request.outputs, keep_unknowns=True)
        return super().RegisterResourceOutputs(request)
