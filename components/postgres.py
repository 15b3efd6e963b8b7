"""Azure Database for PostgreSQL (Flexible Server) reachable only from the cluster's VNet."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure

from components.aks import ClusterPlacement
from components.config import MlflowConfig

PORT = 5432
ADMIN_LOGIN = "llmopsadmin"
# Private Link names for a flexible server (learn.microsoft.com, "Private Link for Azure Database for
# PostgreSQL flexible server").
PRIVATE_LINK_GROUP = "postgresqlServer"
PRIVATE_DNS_ZONE = "privatelink.postgres.database.azure.com"


@dataclass(frozen=True)
class DatabaseLogin:
    """What a client needs to reach one database; the password stays a secret Output."""

    host: pulumi.Output[str]
    database: str
    username: str
    password: pulumi.Output[str]
    port: int = PORT


def server_name(name: str) -> str:
    """Server names are global DNS labels; the hash keeps two stacks of one project apart."""
    digest = hashlib.sha256(f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}".encode()).hexdigest()[:6]
    return f"psql-{name}-{digest}"


class PostgresServer(pulumi.ComponentResource):
    """Password authentication (the MLflow chart and the Argo archive take a user and password, not
    Entra ID tokens), TLS required, public network access disabled and a private endpoint in the
    cluster subnet with its private DNS zone; backups, geo-redundancy and zone-redundant HA from config.
    """

    host: pulumi.Output[str]
    databases: dict[str, azure.dbforpostgresql.Database]

    def __init__(
        self,
        name: str,
        config: MlflowConfig,
        *,
        placement: ClusterPlacement,
        admin_password: pulumi.Output[str],
        database_names: Sequence[str],
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:postgres:PostgresServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        group = placement.resource_group_name

        server = azure.dbforpostgresql.Server(
            f"{name}-server",
            server_name=server_name(name),
            resource_group_name=group,
            location=placement.location,
            version=config.postgres_version,
            sku=azure.dbforpostgresql.SkuArgs(name=config.postgres_sku, tier=config.postgres_tier),
            storage=azure.dbforpostgresql.StorageArgs(storage_size_gb=config.postgres_storage_gb, auto_grow="Enabled"),
            backup=azure.dbforpostgresql.BackupArgs(
                backup_retention_days=config.backup_retention_days,
                geo_redundant_backup="Enabled" if config.geo_redundant_backup else "Disabled",
            ),
            high_availability=azure.dbforpostgresql.HighAvailabilityArgs(
                mode="ZoneRedundant" if config.high_availability else "Disabled"
            ),
            auth_config=azure.dbforpostgresql.AuthConfigArgs(password_auth="Enabled", active_directory_auth="Disabled"),
            administrator_login=ADMIN_LOGIN,
            administrator_login_password=admin_password,
            network=azure.dbforpostgresql.NetworkArgs(public_network_access="Disabled"),
            tags=placement.tags,
            opts=stateful,
        )
        self.host = server.fully_qualified_domain_name
        self._admin_password = admin_password

        # On by default on a flexible server; pinned so nobody can switch TLS off in the portal unnoticed.
        secure_transport = azure.dbforpostgresql.Configuration(
            f"{name}-require-secure-transport",
            configuration_name="require_secure_transport",
            resource_group_name=group,
            server_name=server.name,
            source="user-override",
            value="on",
            opts=child,
        )
        self.databases = {
            database: azure.dbforpostgresql.Database(
                f"{name}-db-{database}",
                database_name=database,
                resource_group_name=group,
                server_name=server.name,
                charset="UTF8",
                collation="en_US.utf8",
                # The server restarts for a configuration change; a database write in between would fail.
                opts=pulumi.ResourceOptions(parent=self, protect=protect, depends_on=[secure_transport]),
            )
            for database in database_names
        }

        endpoint = azure.network.PrivateEndpoint(
            f"{name}-endpoint",
            private_endpoint_name=f"pe-{name}-postgres",
            resource_group_name=group,
            location=placement.location,
            subnet=azure.network.SubnetArgs(id=placement.subnet_id),
            private_link_service_connections=[
                azure.network.PrivateLinkServiceConnectionArgs(
                    name=f"{name}-postgres",
                    private_link_service_id=server.id,
                    group_ids=[PRIVATE_LINK_GROUP],
                )
            ],
            tags=placement.tags,
            opts=child,
        )
        zone = azure.privatedns.PrivateZone(
            f"{name}-dns-zone",
            private_zone_name=PRIVATE_DNS_ZONE,
            resource_group_name=group,
            location="global",
            tags=placement.tags,
            opts=child,
        )
        azure.privatedns.VirtualNetworkLink(
            f"{name}-dns-link",
            virtual_network_link_name=f"{name}-vnet",
            private_zone_name=zone.name,
            resource_group_name=group,
            location="global",
            virtual_network=azure.privatedns.SubResourceArgs(
                id=pulumi.Output.from_input(placement.subnet_id).apply(lambda s: s.rsplit("/subnets/", 1)[0])
            ),
            registration_enabled=False,
            tags=placement.tags,
            opts=child,
        )
        azure.network.PrivateDnsZoneGroup(
            f"{name}-dns-zone-group",
            private_dns_zone_group_name="default",
            private_endpoint_name=endpoint.name,
            resource_group_name=group,
            private_dns_zone_configs=[
                azure.network.PrivateDnsZoneConfigArgs(name="postgres", private_dns_zone_id=zone.id)
            ],
            opts=child,
        )

        self.register_outputs({"host": self.host, "databases": list(database_names)})

    def login(self, database: str) -> DatabaseLogin:
        """The administrator login on `database`: creating narrower roles needs SQL, which has no
        Azure resource; the login is confined to this private, TLS-only server."""
        if database not in self.databases:
            raise KeyError(f"database {database!r} is not on this server ({sorted(self.databases)})")
        return DatabaseLogin(host=self.host, database=database, username=ADMIN_LOGIN, password=self._admin_password)
