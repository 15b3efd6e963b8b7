"""The Envoy gateway in front of the GPU cluster: TLS, client authentication and the API server passthrough."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.config.base import Cidr, DnsLabel, Model, valid_cidr


class GatewayTlsConfig(Model):
    mode: Literal["cert-manager", "provided"] = "cert-manager"
    acme_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
    acme_server: str = "https://acme-v02.api.letsencrypt.org/directory"
    provided_secret_name: DnsLabel | None = None

    @model_validator(mode="after")
    def _source(self) -> Self:
        if self.mode == "cert-manager" and not self.acme_email:
            raise ValueError("acmeEmail: required when mode is 'cert-manager'")
        if self.mode == "provided" and not self.provided_secret_name:
            raise ValueError("providedSecretName: required when mode is 'provided'")
        return self


class GatewayConfig(Model):
    domain: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")
    tls: GatewayTlsConfig
    auth: Literal["api-key", "jwt"] = "api-key"
    jwt_issuer: str | None = None
    jwt_audiences: list[str] = Field(default_factory=list)
    # The keys Envoy verifies tokens with; Entra ID: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
    jwt_jwks_uri: str | None = Field(None, pattern=r"^https://[^\s]+$")
    requests_per_minute: int = Field(600, ge=1)
    passthrough: bool = True
    # The name ArgoCD dials to reach the kube-apiserver through the gateway (DNS points it at the gateway);
    # default `k8s.<domain>`.
    passthrough_hostname: str | None = Field(
        None, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
    )
    passthrough_allowed_cidrs: list[Cidr] = Field(default_factory=list)

    _check_cidrs = field_validator("passthrough_allowed_cidrs")(lambda v: [valid_cidr(c) for c in v])

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.auth == "jwt" and not self.jwt_issuer:
            raise ValueError("jwtIssuer: required when auth is 'jwt'")
        if self.auth == "jwt" and not self.jwt_jwks_uri:
            raise ValueError("jwtJwksUri: required when auth is 'jwt'")
        if self.auth != "jwt" and (self.jwt_issuer or self.jwt_audiences or self.jwt_jwks_uri):
            raise ValueError("auth: jwtIssuer, jwtAudiences and jwtJwksUri only apply when auth is 'jwt'")
        if self.passthrough and not self.passthrough_allowed_cidrs:
            raise ValueError(
                "passthroughAllowedCidrs: required when passthrough is on (the kube-apiserver is never open to all)"
            )
        if not self.passthrough and (self.passthrough_allowed_cidrs or self.passthrough_hostname):
            raise ValueError("passthrough: passthroughHostname and passthroughAllowedCidrs need passthrough on")
        return self

    @property
    def api_server_hostname(self) -> str:
        """The DNS name that reaches the kube-apiserver through the gateway's TLS passthrough listener."""
        return self.passthrough_hostname or f"k8s.{self.domain}"
