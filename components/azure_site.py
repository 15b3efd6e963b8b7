"""Where an environment's Azure resources go: one resource group, one region, one set of tags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

import pulumi

# The location Azure DNS zones (public and private) and their VNet links are created in.
GLOBAL_LOCATION = "global"


class PlacedArgs(TypedDict):
    """The keyword arguments every tracked resource of a site shares (unpacked into the resource's arguments)."""

    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class AzureSite:
    """The resource group, region and tags of one environment: the platform creates the group (components/azure_base.py)
    and every component that creates Azure resources takes the site rather than the three values apart."""

    resource_group_name: pulumi.Input[str]
    location: str
    tags: Mapping[str, str]

    def regional(self) -> PlacedArgs:
        """Arguments of a resource in the site's region."""
        return {"resource_group_name": self.resource_group_name, "location": self.location, "tags": dict(self.tags)}

    def global_(self) -> PlacedArgs:
        """Arguments of a global resource (DNS zones and their links) in the site's group."""
        return {"resource_group_name": self.resource_group_name, "location": GLOBAL_LOCATION, "tags": dict(self.tags)}
