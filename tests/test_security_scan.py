"""A security scan of everything deployed: checkov (kubernetes framework) over every stack's authored objects and
its Helm releases rendered with the real charts. A finding passes only when security/checkov-exceptions.yaml
accepts it with a reason; an exception no finding needs any more fails too, so the file stays reviewed.

One checkov run covers all three stacks, cached under build/scan/ by the hash of its input (planner.scan).
`make scan` prints the counts per release (findings, accepted, failing).
"""

from __future__ import annotations

from functools import cache, partial
from pathlib import Path

import pytest
from support.plan_cache import exclusive
from support.plans import plan_of, planner_cli_on_shared_plan
from support.rendered import RENDER_CACHE, STACKS, releases, rendered_of, skip_reason

from planner.scan import EXCEPTIONS_FILE, ScanReport, load_exceptions, scan


@cache
def report() -> ScanReport:
    if reason := skip_reason():
        pytest.skip(reason)
    inputs = [(plan_of(stack).evaluation, rendered_of(stack)) for stack in STACKS]
    # One process runs checkov at a time: another one waiting for the same input then reads checkov's cache.
    with exclusive("checkov"):
        return scan(inputs, load_exceptions())


def test_every_exception_names_its_checks_objects_and_reason() -> None:
    exceptions = load_exceptions()
    assert exceptions, f"{EXCEPTIONS_FILE} accepts nothing"
    for exception in exceptions:
        assert exception.checks and exception.objects and exception.reason


def test_every_exception_still_accepts_a_finding() -> None:
    unused = report().unused_exceptions()
    assert not unused, "no longer needed (remove them):\n" + "\n".join(f"{e.checks} {e.objects}" for e in unused)


def test_the_scan_covers_every_rendered_release_and_the_authored_objects() -> None:
    for stack in STACKS:
        clusters = releases(stack)
        expected = {f"{cluster}/{name}" for cluster, names in clusters.items() for name in names}
        expected |= {f"{cluster}/authored" for cluster in clusters}
        assert set(report().sources[stack]) == expected


@pytest.mark.parametrize("stack", STACKS)
def test_no_finding_outside_the_reviewed_exceptions(stack: str) -> None:
    failing = [str(finding) for finding in report().failing if finding.stack == stack]
    assert not failing, f"{len(failing)} findings no exception accepts:\n" + "\n".join(failing)


def test_the_planner_option_renders_scans_and_reports_counts_per_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m planner --render`: the same render and scan, its per-release counts in the plan report."""
    if reason := skip_reason():
        pytest.skip(reason)
    import planner.__main__ as planner_cli
    import planner.charts

    planner_cli_on_shared_plan("dev", monkeypatch)
    # The renders kept for the other tests (same charts, arguments, values and helm binary): a chart that draws random
    # values (mlflow's) renders as it did before, so the scan of the same input comes from checkov's cache.
    monkeypatch.setattr(planner.charts, "render_stack", partial(planner.charts.render_stack, cache_dir=RENDER_CACHE))
    assert planner_cli.main(["--stack", "dev", "--out", str(tmp_path), "--render"]) == 0
    printed = capsys.readouterr().out
    report_text = (tmp_path / "dev" / "report.txt").read_text()
    for cluster, names in releases("dev").items():
        assert (tmp_path / "dev" / "rendered" / cluster / f"{names[0]}.yaml").is_file()
        for name in names:
            assert f"{cluster}/{name}" in printed
            assert f"{cluster}/{name}" in report_text
    assert "Security scan: checkov" in report_text
