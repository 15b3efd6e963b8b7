"""Serve the pack to the Pulumi engine (`pulumi preview --policy-pack policies`).

The engine runs this file as a script with this directory first on `sys.path`: the rules are the
package `pack` beside it."""

from pack.catalog import PACK_ENFORCEMENT, PACK_NAME, POLICIES
from pulumi_policy import PolicyPack

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=PACK_ENFORCEMENT)
