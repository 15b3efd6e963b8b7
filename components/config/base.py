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
# Azure VM sizes and PostgreSQL flexible server compute sizes: `Standard_<series><size>[_<version>]`.
VmSize = Annotated[str, Field(pattern=r"^Standard_[A-Za-z0-9]+(_[A-Za-z0-9]+)*$")]
# A subnet by Azure resource id.
SubnetId = Annotated[
    str,
    Field(
        pattern=r"^/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-A-Za-z0-9_.()]+/providers/Microsoft\.Network"
        r"/virtualNetworks/[-A-Za-z0-9_.]+/subnets/[-A-Za-z0-9_.]+$"
    ),
]
# A Kubernetes qualified name (label key, taint key): an optional DNS-subdomain prefix and a name of 1-63 characters.
QualifiedName = Annotated[
    str,
    Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    ),
]
# A Kubernetes label value (also a taint value): empty, or up to 63 characters.
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]
# An Azure tag name: 1-512 characters, none of < > % & \ ? /.
TagName = Annotated[str, Field(pattern=r"^[^<>%&\\?/]{1,512}$")]
TagValue = Annotated[str, Field(max_length=256)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True)


def valid_cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as err:
        raise ValueError(f"must be a CIDR such as 10.0.0.0/16 (got {value!r}: {err})") from None


Cidr = Annotated[str, Field(description="IPv4 CIDR")]
