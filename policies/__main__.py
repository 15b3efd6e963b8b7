"""Serve the pack to the Pulumi engine (`pulumi preview --policy-pack policies`)."""

import sys
from pathlib import Path

# The engine runs this file from inside policies/; the rules import `policies.*` (and the facts in
# `components`) from the project root, as the offline planner and the tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policies.pack import PACK_ENFORCEMENT, PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=PACK_ENFORCEMENT)
