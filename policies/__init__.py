"""CrossGuard policy pack for the LLMOps platform.

The directory is the pack as `pulumi policy publish` ships it: `PulumiPolicy.yaml`, `requirements.txt`
(pulumi and pulumi-policy, all the pack imports) and the package `pack/` (rules by area, `catalog.py`
listing them, the `pricing` engine the budget rule and the plan report share, the plan's core record).
Inside `pack/` imports are relative, so the same code runs as the top-level package `pack` under the
engine (which runs `__main__.py` with this directory on `sys.path`) and as `policies.pack` in the
offline planner and the tests. Only `__main__.py` builds the `PolicyPack` (its constructor starts the
analyzer server).
"""
