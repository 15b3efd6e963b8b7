"""The Envoy gateway in front of the GPU cluster: TLS, client authentication and the API server passthrough."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.config.base import Cidr, DnsLabel, Model, valid_cidr

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ENTRA_V2_ISSUER = re.compile(rf"https://login\.microsoftonline\.com/{_GUID.pattern}/v2\.0")
_ENTRA_V1_ISSUER = re.compile(rf"https://sts\.windows\.net/{_GUID.pattern}/")


class GatewayTlsConfig(Model):
    mode: Literal["cert-manager", "provided"] = Field(
        "cert-manager", description="cert-manager (ACME certificate) or provided (a TLS Secret you create)"
    )
    acme_email: str | None = Field(
        None, pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", description="ACME account e-mail (mode cert-manager)"
    )
    acme_server: str = Field(
        "https://acme-v02.api.letsencrypt.org/directory",
        pattern=r"^https://[^\s]+$",
        description="ACME directory URL; Let's Encrypt production by default",
    )
    provided_secret_name: DnsLabel | None = Field(
        None, description="kubernetes.io/tls Secret in the gateway namespace (mode provided)"
    )

    @model_validator(mode="after")
    def _source(self) -> Self:
        """mode cert-manager needs acmeEmail; mode provided needs providedSecretName."""
        if self.mode == "cert-manager" and not self.acme_email:
            raise ValueError("acmeEmail: required when mode is 'cert-manager'")
        if self.mode == "provided" and not self.provided_secret_name:
            raise ValueError("providedSecretName: required when mode is 'provided'")
        return self


class GatewayConfig(Model):
    domain: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="DNS domain of the gateway's hosts (<service>.<domain>)",
    )
    tls: GatewayTlsConfig = Field(description="where the gateway certificate comes from")
    auth: Literal["api-key", "jwt"] = Field(
        "api-key", description="how clients authenticate: api-key (a shared key) or jwt (Entra ID tokens)"
    )
    jwt_issuer: str | None = Field(
        None,
        pattern=r"^https://[^\s]+$",
        description="token issuer (auth jwt), e.g. https://login.microsoftonline.com/<tenant>/v2.0",
    )
    jwt_audiences: list[str] = Field(default_factory=list, description="audiences a token must carry (auth jwt)")
    # The keys Envoy verifies tokens with; Entra ID: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys
    jwt_jwks_uri: str | None = Field(
        None, pattern=r"^https://[^\s]+$", description="keys Envoy verifies tokens with (auth jwt)"
    )
    requests_per_minute: int = Field(600, ge=1, description="requests per minute per client")
    passthrough: bool = Field(
        True, description="TLS passthrough route to the GPU cluster's kube-apiserver (for ArgoCD)"
    )
    # The name ArgoCD dials to reach the kube-apiserver through the gateway (DNS points it at the gateway);
    # default `k8s.<domain>`.
    passthrough_hostname: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="host name of the passthrough route; default k8s.<domain>",
    )
    passthrough_allowed_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="client CIDRs the kube-apiserver passthrough admits besides the management cluster's egress "
        "prefix, which it always admits",
    )

    _check_cidrs = field_validator("passthrough_allowed_cidrs")(lambda v: [valid_cidr(c) for c in v])

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """auth jwt needs jwtIssuer, jwtJwksUri and jwtAudiences a token of that issuer carries; jwt keys only with auth
        jwt; passthrough keys only with passthrough."""
        if self.auth == "jwt" and not self.jwt_issuer:
            raise ValueError("jwtIssuer: required when auth is 'jwt'")
        if self.auth == "jwt" and not self.jwt_jwks_uri:
            raise ValueError("jwtJwksUri: required when auth is 'jwt'")
        if self.auth == "jwt":
            self._entra_token_can_match()
        if self.auth != "jwt" and (self.jwt_issuer or self.jwt_audiences or self.jwt_jwks_uri):
            raise ValueError("auth: jwtIssuer, jwtAudiences and jwtJwksUri only apply when auth is 'jwt'")
        if not self.passthrough and (self.passthrough_allowed_cidrs or self.passthrough_hostname):
            raise ValueError("passthrough: passthroughHostname and passthroughAllowedCidrs need passthrough on")
        return self

    def _entra_token_can_match(self) -> None:
        """Entra puts the API's client id in `aud` of a v2.0 token and the requested identifier (such as an
        `api://` App ID URI) in `aud` of a v1 token, whose issuer is sts.windows.net: an issuer/audience pair
        that no token carries would lock every client out."""
        if not self.jwt_audiences:
            raise ValueError("jwtAudiences: required when auth is 'jwt' (the audience clients request tokens for)")
        issuer = self.jwt_issuer or ""
        if _ENTRA_V2_ISSUER.fullmatch(issuer):
            if wrong := [a for a in self.jwt_audiences if not _GUID.fullmatch(a)]:
                raise ValueError(
                    f"jwtAudiences: Entra v2.0 tokens ({issuer}) carry the API app's client id (a GUID) as audience; "
                    f"{', '.join(wrong)} never matches (an api:// audience needs the v1 issuer "
                    "https://sts.windows.net/<tenant>/)"
                )
        elif not _ENTRA_V1_ISSUER.fullmatch(issuer) and (
            uris := [a for a in self.jwt_audiences if a.startswith("api://")]
        ):
            raise ValueError(
                f"jwtAudiences: {', '.join(uris)}: an api:// audience is only in Entra v1 tokens, whose issuer is "
                f"https://sts.windows.net/<tenant>/ (got issuer {issuer})"
            )

    @property
    def token_audience(self) -> str | None:
        """The audience clients of the gateway (the pipeline steps) request their tokens for."""
        return self.jwt_audiences[0] if self.auth == "jwt" else None

    @property
    def api_server_hostname(self) -> str:
        """The DNS name that reaches the kube-apiserver through the gateway's TLS passthrough listener."""
        return self.passthrough_hostname or f"k8s.{self.domain}"
