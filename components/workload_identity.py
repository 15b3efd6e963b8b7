"""An Entra ID identity that Kubernetes ServiceAccounts assume through AKS workload identity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.azure_site import AzureSite

# Audience AKS workload identity tokens are issued for (learn.microsoft.com, "Use Microsoft Entra
# Workload ID with AKS").
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# Annotation on the ServiceAccount and label on the pod that make the AKS webhook inject the token.
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
USE_LABEL = "azure.workload.identity/use"


def subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


@dataclass(frozen=True)
class RoleGrant:
    """A built-in role on one scope, e.g. Storage Blob Data Contributor on a blob container."""

    name: str
    role_definition_id: str
    scope: pulumi.Input[str]


def built_in_role_definition_id(subscription_id: pulumi.Output[str], role: str) -> pulumi.Output[str]:
    """The full id of the built-in role `role` (a GUID) as a role assignment in `subscription_id` names it."""
    return subscription_id.apply(
        lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


class WorkloadIdentity(pulumi.ComponentResource):
    """A user-assigned identity, one federated credential per ServiceAccount that may use it, and
    its role assignments. No secret exists anywhere: pods exchange their projected token."""

    client_id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    identity: azure.managedidentity.UserAssignedIdentity
    federated_credentials: list[azure.managedidentity.FederatedIdentityCredential]

    def __init__(
        self,
        name: str,
        *,
        site: AzureSite,
        oidc_issuer_url: pulumi.Input[str],
        service_accounts: Sequence[tuple[str, str]],
        grants: Sequence[RoleGrant],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:identity:WorkloadIdentity", name, None, opts)
        identity = azure.managedidentity.UserAssignedIdentity(
            f"{name}-identity", resource_name_=f"id-{name}", **site.regional(), opts=pulumi.ResourceOptions(parent=self)
        )
        self.identity = identity
        self.client_id = identity.client_id
        self.principal_id = identity.principal_id
        self.federated_credentials = []

        # Azure rejects concurrent writes of federated credentials on one identity, so they form a chain.
        previous: list[pulumi.Resource] = []
        for namespace, account in service_accounts:
            credential = azure.managedidentity.FederatedIdentityCredential(
                f"{name}-{namespace}-{account}",
                federated_identity_credential_resource_name=f"{namespace}-{account}",
                resource_group_name=site.resource_group_name,
                resource_name_=identity.name,
                issuer=oidc_issuer_url,
                subject=subject(namespace, account),
                audiences=[TOKEN_EXCHANGE_AUDIENCE],
                opts=pulumi.ResourceOptions(parent=self, depends_on=previous),
            )
            previous = [credential]
            self.federated_credentials.append(credential)

        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))
        for grant in grants:
            azure.authorization.RoleAssignment(
                f"{name}-{grant.name}",
                principal_id=identity.principal_id,
                # Set explicitly: a just-created identity may not have replicated yet, and ARM would then
                # fail to look up its type.
                principal_type="ServicePrincipal",
                role_definition_id=built_in_role_definition_id(client.subscription_id, grant.role_definition_id),
                scope=grant.scope,
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.register_outputs({"clientId": self.client_id, "principalId": self.principal_id})
