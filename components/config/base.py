"""What every config model shares: the namespace, the strictness of `Model`, and the constrained types."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

NAMESPACE = "llmops"

Environment = Literal["dev", "staging", "prod"]
DnsLabel = Annotated[str, Field(pattern=r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")]
PoolName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]{0,11}$")]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
KubernetesVersion = Annotated[str, Field(pattern=r"^1\.\d{2}(\.\d+)?$")]
Quantity = Annotated[str, Field(pattern=r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|m)?$")]
ChartVersion = Annotated[str, Field(pattern=r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def valid_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"must be a CIDR such as 10.0.0.0/16 (got {value!r}: {err})") from None


Cidr = Annotated[str, Field(description="IPv4 CIDR")]
