"""Azure Database for PostgreSQL (Flexible Server) reachable only from the cluster's VNet, and the application
roles its clients log in as.

ARM manages the server and its databases but has no resource for a database role, and the clients (the MLflow
chart, the Argo Workflows archive) take a user and password, not Entra ID tokens that expire within the hour.
So a Kubernetes Job on the management cluster logs in as the server admin and creates one login role per
application, owning that application's databases; the admin login stays with this program and that Job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure
import pulumi_kubernetes as k8s

from components.aks import ClusterPlacement
from components.config import MlflowConfig
from components.kube import object_meta, platform_labels, secret
from components.network_policies import NamespaceSpec
from components.passwords import generated_password

PORT = 5432
ADMIN_LOGIN = "llmopsadmin"
ROLES_NAMESPACE = "llmops-db-roles"
ROLES_JOB = "postgres-app-roles"
ROLE_PASSWORDS_SECRET = "postgres-role-passwords"
# psql >= 15 for `\getenv`; the image's `postgres` user (uid 70 in the Alpine variant) runs it.
PSQL_IMAGE = "docker.io/library/postgres:17.6-alpine3.22"
PSQL_USER = 70


@dataclass(frozen=True)
class AppRole:
    """A login role that owns `databases`; `password` is the configured one, or None to generate it."""

    name: str
    databases: tuple[str, ...]
    password: pulumi.Output[str] | None = None


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

    def credentials_secret(
        self, resource_name: str, secret_name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
    ) -> k8s.core.v1.Secret:
        """The login as a `username`/`password` Secret, the shape the MLflow and Argo Workflows charts read."""
        return secret(
            resource_name,
            object_meta(secret_name, namespace),
            string_data={"username": self.username, "password": self.password},
            opts=opts,
        )


def server_name(name: str) -> str:
    """Server names are global DNS labels; the hash keeps two stacks of one project apart."""
    digest = hashlib.sha256(f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}".encode()).hexdigest()[:6]
    return f"psql-{name}-{digest}"


class PostgresServer(pulumi.ComponentResource):
    """Password authentication (the MLflow chart and the Argo archive take a user and password, not
    Entra ID tokens), TLS required, public network access disabled and a private endpoint in the
    cluster subnet with its private DNS zone; backups, geo-redundancy and zone-redundant HA from config.
    One database per name in `roles`; the roles themselves are created by `DatabaseRoles`. A password not
    configured (`admin_password`, `AppRole.password`) is generated.
    """

    host: pulumi.Output[str]
    databases: dict[str, azure.dbforpostgresql.Database]
    admin_password: pulumi.Output[str]
    role_passwords: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        config: MlflowConfig,
        *,
        placement: ClusterPlacement,
        admin_password: pulumi.Output[str] | None,
        roles: Sequence[AppRole],
        protect: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:postgres:PostgresServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=protect)
        site = placement.site
        group = site.resource_group_name
        database_names = [database for role in roles for database in role.databases]
        if len(set(database_names)) != len(database_names):
            raise ValueError(f"each database belongs to one role (got {database_names})")
        self.roles = list(roles)
        self.admin_password = admin_password or generated_password(f"{name}-admin-password", self)
        self.role_passwords = {
            role.name: role.password or generated_password(f"{name}-{role.name}-password", self) for role in roles
        }

        server = azure.dbforpostgresql.Server(
            f"{name}-server",
            server_name=server_name(name),
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
            administrator_login_password=self.admin_password,
            network=azure.dbforpostgresql.NetworkArgs(public_network_access="Disabled"),
            **site.regional(),
            opts=stateful,
        )
        self.host = server.fully_qualified_domain_name

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
            subnet=azure.network.SubnetArgs(id=placement.subnet_id),
            private_link_service_connections=[
                azure.network.PrivateLinkServiceConnectionArgs(
                    name=f"{name}-postgres",
                    private_link_service_id=server.id,
                    group_ids=[PRIVATE_LINK_GROUP],
                )
            ],
            **site.regional(),
            opts=child,
        )
        zone = azure.privatedns.PrivateZone(
            f"{name}-dns-zone", private_zone_name=PRIVATE_DNS_ZONE, **site.global_(), opts=child
        )
        azure.privatedns.VirtualNetworkLink(
            f"{name}-dns-link",
            virtual_network_link_name=f"{name}-vnet",
            private_zone_name=zone.name,
            virtual_network=azure.privatedns.SubResourceArgs(
                id=pulumi.Output.from_input(placement.subnet_id).apply(lambda s: s.rsplit("/subnets/", 1)[0])
            ),
            registration_enabled=False,
            **site.global_(),
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
        """The login of the application role that owns `database` (never the admin's)."""
        for role in self.roles:
            if database in role.databases:
                return DatabaseLogin(
                    host=self.host, database=database, username=role.name, password=self.role_passwords[role.name]
                )
        raise KeyError(f"database {database!r} is not on this server ({sorted(self.databases)})")


def roles_script(roles: Sequence[AppRole]) -> str:
    """psql script that makes each role a login with its password (read from the environment, see
    `password_env`) and the owner of its databases, whatever ran before: safe to run on every change.

    The admin must be a member of a role to hand it a database (PostgreSQL 16 gives the creating admin only
    ADMIN OPTION); owning the database also makes the role own its `public` schema (PostgreSQL >= 15). Other
    roles lose the default CONNECT, so one application cannot open the other's database.
    """
    lines = ["\\set ON_ERROR_STOP on"]
    for role in roles:
        lines += [
            f"\\getenv role_password {password_env(role.name)}",
            f"SELECT format('CREATE ROLE %I LOGIN', '{role.name}') "
            f"WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role.name}') \\gexec",
            f"ALTER ROLE \"{role.name}\" WITH LOGIN PASSWORD :'role_password';",
            f'GRANT "{role.name}" TO CURRENT_USER;',
        ]
        for database in role.databases:
            lines += [
                f'ALTER DATABASE "{database}" OWNER TO "{role.name}";',
                f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;',
            ]
    lines.append("\\unset role_password")
    return "\n".join(lines) + "\n"


def password_env(role: str) -> str:
    return f"ROLE_PASSWORD_{role.upper().replace('-', '_')}"


class DatabaseRoles(pulumi.ComponentResource):
    """The Job (on the management cluster, in the server's VNet) that creates the application roles of `server`
    as its admin. Clients of the roles must depend on `job`: Pulumi waits for a Job to complete. The Job is
    replaced, so it runs again, whenever the script or a password changes."""

    job: k8s.batch.v1.Job

    def __init__(
        self,
        name: str,
        server: PostgresServer,
        *,
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:postgres:DatabaseRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        # Nothing calls the Job; it only connects out, to the server's private endpoint.
        isolated = NamespaceSpec(ROLES_NAMESPACE, "restricted", [], name).create(parent=self, provider=provider)
        ns = isolated.namespace
        passwords = {"PGPASSWORD": server.admin_password} | {
            password_env(role): password for role, password in server.role_passwords.items()
        }
        credentials = secret(
            f"{name}-credentials",
            object_meta(ROLE_PASSWORDS_SECRET, ns.metadata.name),
            string_data=passwords,
            opts=child,
        )
        script = roles_script(server.roles)
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata=object_meta("postgres-app-roles", ns.metadata.name),
            data={"roles.sql": script},
            opts=child,
        )
        env = [
            k8s.core.v1.EnvVarArgs(name="PGHOST", value=server.host),
            k8s.core.v1.EnvVarArgs(name="PGPORT", value=str(PORT)),
            k8s.core.v1.EnvVarArgs(name="PGDATABASE", value="postgres"),
            k8s.core.v1.EnvVarArgs(name="PGUSER", value=ADMIN_LOGIN),
            # The server refuses clear-text connections (require_secure_transport).
            k8s.core.v1.EnvVarArgs(name="PGSSLMODE", value="require"),
            k8s.core.v1.EnvVarArgs(name="PGCONNECT_TIMEOUT", value="15"),
            *(
                k8s.core.v1.EnvVarArgs(
                    name=key,
                    value_from=k8s.core.v1.EnvVarSourceArgs(
                        secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=ROLE_PASSWORDS_SECRET, key=key)
                    ),
                )
                for key in sorted(passwords)
            ),
        ]
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=object_meta(ROLES_JOB, ns.metadata.name),
            spec=k8s.batch.v1.JobSpecArgs(
                # The private endpoint's DNS record can trail the server by a few minutes on a first install.
                backoff_limit=8,
                active_deadline_seconds=1200,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=platform_labels("postgres-roles")),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=PSQL_USER,
                            run_as_group=PSQL_USER,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="psql",
                                image=PSQL_IMAGE,
                                command=["psql", "--no-psqlrc", "--file=/script/roles.sql"],
                                env=env,
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "50m", "memory": "32Mi"}, limits={"cpu": "200m", "memory": "128Mi"}
                                ),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                    read_only_root_filesystem=True,
                                ),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="script", mount_path="/script", read_only=True)
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="script",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config_map.metadata.name),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                depends_on=[*isolated.policies, credentials, config_map, *server.databases.values()],
                # A Job's template cannot change in place, and a completed Job does not run again: replace it (same
                # name, so delete first) when the script or any password changes. The trigger stays secret.
                replacement_trigger=pulumi.Output.secret(pulumi.Output.all(script, *passwords.values())),
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"namespace": ROLES_NAMESPACE, "job": ROLES_JOB})
