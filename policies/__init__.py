"""CrossGuard policy pack for the LLMOps platform. Rules live in modules by area; `pack.py` lists
them; only `__main__.py` builds the `PolicyPack` (its constructor starts the analyzer server)."""
