"""Blob storage for pipeline and experiment artifacts, reachable only with Entra ID credentials."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import pulumi
import pulumi_azure_native as azure

from components.azure_site import AzureSite

# Built-in role "Storage Blob Data Contributor": read, write and delete blobs, nothing on the account.
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def storage_account_name(name: str) -> str:
    """Storage account names are global, 3-24 lowercase letters and digits: a readable prefix plus a
    hash of project, stack and component keeps them unique and stable."""
    digest = hashlib.sha256(f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}".encode()).hexdigest()[:8]
    return f"st{re.sub(r'[^a-z0-9]', '', name.lower())[:14]}{digest}"


class ArtifactStorage(pulumi.ComponentResource):
    """A StorageV2 account (HTTPS and TLS 1.2 only, no public blobs, no shared keys: every client uses
    workload identity) with soft delete, and one private container per consumer."""

    account_name: pulumi.Output[str]
    account_id: pulumi.Output[str]
    blob_endpoint: pulumi.Output[str]
    containers: dict[str, azure.storage.BlobContainer]

    def __init__(
        self,
        name: str,
        *,
        site: AzureSite,
        container_names: Sequence[str],
        protect: bool,
        soft_delete_days: int = 14,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:storage:ArtifactStorage", name, None, opts)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        account = azure.storage.StorageAccount(
            f"{name}-account",
            account_name=storage_account_name(name),
            kind=azure.storage.Kind.STORAGE_V2,
            # Zone-redundant: artifacts are the lineage of every deployed adapter.
            sku=azure.storage.SkuArgs(name=azure.storage.SkuName.STANDARD_ZRS),
            access_tier=azure.storage.AccessTier.HOT,
            enable_https_traffic_only=True,
            minimum_tls_version=azure.storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            **site.regional(),
            opts=stateful,
        )
        self.account_name = account.name
        self.account_id = account.id
        self.blob_endpoint = account.primary_endpoints.apply(lambda endpoints: endpoints.blob.rstrip("/"))

        azure.storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account.name,
            resource_group_name=site.resource_group_name,
            blob_services_name="default",
            delete_retention_policy=azure.storage.DeleteRetentionPolicyArgs(enabled=True, days=soft_delete_days),
            container_delete_retention_policy=azure.storage.DeleteRetentionPolicyArgs(
                enabled=True, days=soft_delete_days
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.containers = {
            container: azure.storage.BlobContainer(
                f"{name}-{container}",
                account_name=account.name,
                resource_group_name=site.resource_group_name,
                container_name=container,
                public_access=azure.storage.PublicAccess.NONE,
                opts=stateful,
            )
            for container in container_names
        }

        self.register_outputs(
            {
                "accountName": self.account_name,
                "blobEndpoint": self.blob_endpoint,
                "containers": {key: c.name for key, c in self.containers.items()},
            }
        )
