"""The configuration reference in docs/ is generated from the models and must not go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_current() -> None:
    spec = importlib.util.spec_from_file_location("gen_config_reference", ROOT / "tools" / "gen_config_reference.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == generator.render(), "docs/configuration.md is stale: run `make docs`"


def test_readme_quick_start_commands_exist_in_the_makefile() -> None:
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    for target in ("plan", "test"):
        assert f"\n{target}:" in makefile
        assert f"make {target}" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_counts_the_rules_the_pack_ships() -> None:
    from policies.pack.catalog import POLICIES

    readme = (ROOT / "README.md").read_text()
    assert f"CrossGuard pack of {len(POLICIES)} rules" in readme, "README.md's rule count is stale"
