"""`python -m planner.scan --stack dev [--stack staging …]`: checkov over everything a stack deploys.

The objects the program authors and every Helm release rendered with its real chart (planner.charts) are
scanned with checkov's kubernetes framework. A finding fails the scan unless the reviewed exceptions file
(`security/checkov-exceptions.yaml`) accepts it: each exception names the check, the objects as
`<release>/<Kind>/<name>` patterns (`authored` for the program's own objects) and why it is accepted.

Objects are scanned as they land: in their release's namespace (Helm puts them there) and with Secret data
redacted (no check reads it, and redaction keeps random chart-made secrets from changing the input). A scan's
raw result is cached under `build/scan/` by the hash of checkov's version and its input, so an unchanged
plan is not scanned twice. Exit codes: 0 no failing finding, 1 failing findings or a chart that could not be had,
2 a configuration error.
"""

from __future__ import annotations

import argparse
import copy
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from planner.charts import BadStackConfig, StackRender, charts_dir_default, evaluated_stack, render_stack
from planner.evaluate import PROJECT_DIR, Evaluation
from planner.render import cluster_of, is_authored_object, manifest

EXCEPTIONS_FILE = PROJECT_DIR / "security" / "checkov-exceptions.yaml"
SCAN_DIR = PROJECT_DIR / "build" / "scan"
AUTHORED = "authored"
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")

# Kubernetes kinds that live outside namespaces; Helm installs every other object of a release into the
# release namespace when its template leaves the namespace out.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "APIService",
        "CSIDriver",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "DeviceClass",
        "FlowSchema",
        "IngressClass",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "PriorityLevelConfiguration",
        "RuntimeClass",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
        # Custom resources of the charts we render that are cluster-scoped (their CRDs say `scope: Cluster`).
        "ClusterIssuer",
        "ClusterPolicy",
        "ClusterWorkflowTemplate",
        "GatewayClass",
        "NodeFeatureRule",
        "NVIDIADriver",
    }
)


@dataclass(frozen=True)
class Finding:
    stack: str
    cluster: str
    release: str
    check_id: str
    check_name: str
    kind: str
    namespace: str
    name: str

    @property
    def source(self) -> str:
        return f"{self.cluster}/{self.release}"

    @property
    def object(self) -> str:
        return f"{self.release}/{self.kind}/{self.name}"

    def __str__(self) -> str:
        return f"{self.stack} {self.check_id} {self.object} (namespace {self.namespace}): {self.check_name}"


@dataclass(frozen=True)
class ScanException:
    checks: tuple[str, ...]
    objects: tuple[str, ...]
    reason: str
    stacks: tuple[str, ...] = ()

    def accepts(self, finding: Finding) -> bool:
        return (
            finding.check_id in self.checks
            and (not self.stacks or finding.stack in self.stacks)
            and any(fnmatch.fnmatchcase(finding.object, pattern) for pattern in self.objects)
        )


def load_exceptions(path: Path = EXCEPTIONS_FILE) -> list[ScanException]:
    """The reviewed exceptions; a malformed entry is an error naming its index."""
    entries = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("exceptions") or []
    exceptions = []
    for index, entry in enumerate(entries):
        where = f"{path.name}: exceptions[{index}]"
        unknown = set(entry) - {"check", "objects", "reason", "stacks"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        checks = entry.get("check")
        checks = checks if isinstance(checks, list) else [checks]
        if not all(CHECK_ID.match(str(check)) for check in checks):
            raise ValueError(f"{where}.check: a checkov kubernetes check id such as CKV_K8S_16, or a list of them")
        objects = entry.get("objects") or []
        if not objects or not all(isinstance(o, str) and o.count("/") == 2 for o in objects):
            raise ValueError(f"{where}.objects: one or more `<release>/<Kind>/<name>` patterns")
        if len(str(entry.get("reason") or "").split()) < 5:
            raise ValueError(f"{where}.reason: say why the finding is accepted")
        reason = " ".join(str(entry["reason"]).split())
        exceptions.append(ScanException(tuple(checks), tuple(objects), reason, tuple(entry.get("stacks") or ())))
    return exceptions


# ----------------------------------------------------------------------------------------------------------
# Scan input
# ----------------------------------------------------------------------------------------------------------


def as_applied(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """An object as it lands: in `namespace` unless cluster-scoped or placed elsewhere; Secret data redacted.

    A workload's Pod template gets the namespace too: checkov models the Pods of a workload from its template
    and would otherwise put them in `default`, where no NetworkPolicy of theirs selects them."""
    placed = copy.deepcopy(dict(obj))
    if placed.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(placed.get(key), dict):
                placed[key] = dict.fromkeys(placed[key], "[secret]")
    if placed.get("kind") in CLUSTER_SCOPED_KINDS:
        return placed
    metadata_ = placed["metadata"] = placed.get("metadata") or {}
    metadata_["namespace"] = metadata_.get("namespace") or namespace
    spec = placed.get("spec") or {}
    pod_spec_holder = (spec.get("jobTemplate") or {}).get("spec") or spec
    template = pod_spec_holder.get("template") if isinstance(pod_spec_holder, dict) else None
    if isinstance(template, dict):
        template_metadata = template["metadata"] = template.get("metadata") or {}
        template_metadata["namespace"] = template_metadata.get("namespace") or metadata_["namespace"]
    return placed


def _documents(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects in a stable order, so the same plan always makes the same scan input (and cache key)."""

    def identity(obj: Mapping[str, Any]) -> tuple[str, str, str]:
        metadata_ = obj.get("metadata") or {}
        return str(obj.get("kind")), str(metadata_.get("namespace")), str(metadata_.get("name"))

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(sorted(objects, key=identity), Dumper=dumper, sort_keys=True)


def scan_inputs(evaluation: Evaluation, stack_render: StackRender) -> dict[str, str]:
    """`<stack>/<cluster>/<release>.yaml` per rendered release (without its CRDs, which no check reads) and
    `<stack>/<cluster>/authored.yaml` with the program's own objects, as YAML text."""
    stack = evaluation.stack
    inputs: dict[str, str] = {}
    by_urn = {r.urn: r for r in evaluation.registrations}
    authored: dict[str, list[dict[str, Any]]] = {}
    for registration in evaluation.registrations:
        if is_authored_object(registration):
            obj = manifest(registration)
            namespace = str((obj.get("metadata") or {}).get("namespace") or "default")
            authored.setdefault(cluster_of(registration, by_urn), []).append(as_applied(obj, namespace))
    for cluster, objects in sorted(authored.items()):
        inputs[f"{stack}/{cluster}/{AUTHORED}.yaml"] = _documents(objects)
    for rendered in stack_render.rendered:
        release = rendered.release
        placed = (as_applied(obj, release.namespace) for obj in rendered.objects)
        inputs[f"{stack}/{release.cluster}/{release.name}.yaml"] = _documents(placed)
    return inputs


# ----------------------------------------------------------------------------------------------------------
# checkov
# ----------------------------------------------------------------------------------------------------------


def checkov_version() -> str:
    return metadata.version("checkov")


def _checkov_command() -> list[str]:
    installed = Path(sys.executable).parent / "checkov"
    return [str(installed)] if installed.is_file() else [shutil.which("checkov") or "checkov"]


def run_checkov(inputs: Mapping[str, str], cache_dir: Path = SCAN_DIR) -> list[dict[str, Any]]:
    """checkov's failed checks over `inputs` (relative path -> YAML), each with `file_path` relative to the
    scanned folder, from the cache when the same checkov already scanned the same input."""
    digest = hashlib.sha256(checkov_version().encode())
    for path in sorted(inputs):
        digest.update(path.encode() + b"\0" + inputs[path].encode() + b"\0")
    cached = cache_dir / "cache" / f"{digest.hexdigest()}.json"
    if cached.is_file():
        result: list[dict[str, Any]] = json.loads(cached.read_text())
        return result
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        root = Path(scratch) / "input"
        for path, text in inputs.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        command = [*_checkov_command(), "--directory", str(root), "--framework", "kubernetes"]
        command += ["--output", "json", "--quiet", "--compact", "--soft-fail", "--skip-download"]
        # No Prisma Cloud calls: the machines have no internet, and the scan must not depend on it.
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
        completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"checkov failed (exit {completed.returncode}): {completed.stderr.strip()[-2000:]}")
        reports = json.loads(completed.stdout)
    failed = [
        {key: check[key] for key in ("check_id", "check_name", "file_path", "resource")}
        for report in (reports if isinstance(reports, list) else [reports])
        for check in (report.get("results") or {}).get("failed_checks", [])
    ]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(failed, indent=1))
    return failed


def findings(failed_checks: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Failed checks as findings, located by their input file `<stack>/<cluster>/<release>.yaml`."""
    found = []
    for check in failed_checks:
        stack, cluster, file_name = str(check["file_path"]).strip("/").split("/")
        kind, namespace, name = str(check["resource"]).split(".", 2)
        if kind == "Pod" and str(check["check_id"]).startswith("CKV2_"):
            # A graph check's Pod is modelled from a workload template: `Pod.<ns>.<workload>.<label>-<value>…`.
            name = name.split(".", 1)[0]
        found.append(
            Finding(
                stack=stack,
                cluster=cluster,
                release=file_name.removesuffix(".yaml"),
                check_id=str(check["check_id"]),
                check_name=str(check["check_name"]),
                kind=kind,
                namespace=namespace,
                name=name,
            )
        )
    return sorted(found, key=lambda f: (f.stack, f.source, f.check_id, f.kind, f.name))


@dataclass(frozen=True)
class ScanReport:
    sources: dict[str, list[str]]
    findings: list[Finding]
    exceptions: list[ScanException]

    def accepted_by(self, finding: Finding) -> ScanException | None:
        return next((e for e in self.exceptions if e.accepts(finding)), None)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if self.accepted_by(f) is None]

    def unused_exceptions(self) -> list[ScanException]:
        return [e for e in self.exceptions if not any(e.accepts(f) for f in self.findings)]

    def counts(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """(stack, `<cluster>/<release>`) -> (findings before exceptions, accepted, failing)."""
        before = Counter((f.stack, f.source) for f in self.findings)
        failing = Counter((f.stack, f.source) for f in self.failing)
        keys = [(stack, source) for stack, sources in self.sources.items() for source in sources]
        return {key: (before[key], before[key] - failing[key], failing[key]) for key in keys}

    def lines(self) -> list[str]:
        lines = [f"Security scan: checkov {checkov_version()} (kubernetes); findings / accepted / failing"]
        totals = [0, 0, 0]
        for (stack, source), counts in self.counts().items():
            lines.append(f"  {stack:8s} {source:36s} {counts[0]:4d} {counts[1]:4d} {counts[2]:4d}")
            totals = [t + c for t, c in zip(totals, counts, strict=True)]
        lines.append(f"  {'total':45s} {totals[0]:4d} {totals[1]:4d} {totals[2]:4d}")
        return lines


def scan(
    stacks: Sequence[tuple[Evaluation, StackRender]], exceptions: list[ScanException], cache_dir: Path = SCAN_DIR
) -> ScanReport:
    """One checkov run over every given stack (its start-up dominates a small scan)."""
    inputs: dict[str, str] = {}
    for evaluation, stack_render in stacks:
        inputs |= scan_inputs(evaluation, stack_render)
    sources: dict[str, list[str]] = {}
    for path in inputs:
        stack, cluster, file_name = path.split("/")
        sources.setdefault(stack, []).append(f"{cluster}/{file_name.removesuffix('.yaml')}")
    return ScanReport(sources, findings(run_checkov(inputs, cache_dir)), exceptions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planner.scan", description=__doc__)
    parser.add_argument("--stack", action="append", help="stack to scan (repeatable; default dev)")
    parser.add_argument("--charts-dir", type=Path, default=None, help="chart sources (see planner.charts)")
    parser.add_argument("--offline", action="store_true", help="never pull a chart that is not in the charts folder")
    parser.add_argument("--exceptions", type=Path, default=EXCEPTIONS_FILE, help="reviewed exceptions file")
    parser.add_argument("--verbose", action="store_true", help="list accepted findings too")
    args = parser.parse_args(argv)
    try:
        exceptions = load_exceptions(args.exceptions)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    stacks = []
    for stack in args.stack or ["dev"]:
        try:
            evaluation, config = evaluated_stack(stack)
        except BadStackConfig as error:
            print(error, file=sys.stderr)
            return 2
        stack_render = render_stack(evaluation, config, args.charts_dir or charts_dir_default(), offline=args.offline)
        for label, reason in stack_render.unavailable.items():
            print(f"{stack} {label}: not scanned: {reason}")
        if stack_render.missing_charts:
            return 1
        stacks.append((evaluation, stack_render))
    report = scan(stacks, exceptions)
    print("\n".join(report.lines()))
    for finding in report.findings:
        accepted = report.accepted_by(finding)
        if accepted is None:
            print(f"FAILING  {finding}")
        elif args.verbose:
            print(f"accepted {finding}  -- {accepted.reason}")
    return 1 if report.failing else 0


if __name__ == "__main__":
    sys.exit(main())
