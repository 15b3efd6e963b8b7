"""`python -m planner.charts --stack dev`: render every Helm release of a stack with its real chart.

Each `helm.v3.Release` the program registers is rendered with `helm template` the way the Release would
install it: same release name, namespace, chart version and values, at the Kubernetes version of its
cluster, with the Prometheus Operator API among the cluster's API versions when the stack says the CRDs
exist, with the chart's CRDs and hooks, without its test hooks. The result lands in
`build/plan/<stack>/rendered/<cluster>/<release>.yaml`.

Charts come from a local folder of chart sources, `<charts dir>/<chart>-<version>/` (default
`../shared/reference/helm-charts`, or `--charts-dir` / `LLMOPS_CHARTS_DIR`); a chart not there is pulled
from its pinned repository with `helm pull` into `build/charts/` unless `--offline`. Charts on NVIDIA's
NGC repository need `NGC_API_KEY` to be pulled.

Only `helm.v3.Release`s are rendered: Envoy Gateway's CRD chart (gateway-crds-helm, a `helm.v4.Chart` of CRDs
only, not in the reference chart sources) is not; see NOT_RENDERED_CHARTS in tests/support/rendered.py.

Secrets never reach a render: secret values become a stand-in string, so the files are safe to keep.
Exit codes: 0 ok (a chart behind a login we lack is listed, not rendered), 1 a release failed to render (helm's
own message is printed) or its chart could not be had, 2 a configuration error.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from planner.evaluate import PROJECT_DIR, Evaluation, evaluate, platform_config_of, stack_config
from planner.helm_tool import HelmUnavailable, helm_binary, helm_version
from planner.render import cluster_of
from planner.stand_ins import secret_strings, stand_in
from policies.pack.tokens import HELM_RELEASE, MANAGED_CLUSTER

DEFAULT_CHARTS_DIR = PROJECT_DIR.parent / "shared" / "reference" / "helm-charts"
CHARTS_DIR_ENV = "LLMOPS_CHARTS_DIR"
PULLED_CHARTS_DIR = PROJECT_DIR / "build" / "charts"
PROMETHEUS_OPERATOR_API = "monitoring.coreos.com/v1"
NGC_HELM_HOST = "helm.ngc.nvidia.com"


class ChartUnavailable(Exception):
    """The chart of a release is neither in the charts folder nor pullable here; the message is one line.
    `needs_login`: only a repository login (the NGC API key) is missing, which is expected without that key."""

    def __init__(self, message: str, needs_login: bool = False) -> None:
        super().__init__(message)
        self.needs_login = needs_login


class RenderError(Exception):
    """`helm template` refused a release; the message is helm's own."""


@dataclass(frozen=True)
class HelmRelease:
    """What `helm template` needs to render one Release as it would be installed."""

    cluster: str
    name: str
    chart: str
    version: str
    repository: str | None
    namespace: str
    values: Mapping[str, Any]
    kubernetes_version: str
    api_versions: tuple[str, ...]
    include_crds: bool
    # The Release logs in to its repository (NGC's `$oauthtoken` and the NGC API key).
    credentials: bool = False

    @property
    def chart_name(self) -> str:
        """`gateway-helm` for `oci://docker.io/envoyproxy/gateway-helm`, else the chart as given."""
        return self.chart.rsplit("/", 1)[-1]

    @property
    def oci(self) -> bool:
        return self.chart.startswith("oci://")

    @property
    def on_ngc(self) -> bool:
        return NGC_HELM_HOST in (self.repository or self.chart)

    @property
    def pullable(self) -> str | None:
        """Why this machine cannot pull the chart, or None: a login needs the NGC API key in `NGC_API_KEY`."""
        if not self.credentials or (self.on_ngc and os.environ.get("NGC_API_KEY")):
            return None
        where = "NGC" if self.on_ngc else str(self.repository)
        return f"published only on {where} ({self.repository} {self.version}), which needs a login; set NGC_API_KEY"

    @property
    def label(self) -> str:
        return f"{self.cluster}/{self.name}"


@dataclass(frozen=True)
class RenderedRelease:
    """One release's manifest as helm printed it. `objects` are its documents except the CRDs, which run to
    megabytes (Argo CD, Envoy Gateway) and stay text in `crd_documents` for whoever needs them parsed."""

    release: HelmRelease
    text: str

    @functools.cached_property
    def _split(self) -> tuple[list[str], list[str]]:
        crds: list[str] = []
        others: list[str] = []
        for document in _DOCUMENT_SEPARATOR.split(self.text):
            (crds if _CRD_KIND.search(document) else others).append(document)
        return crds, others

    @property
    def crd_documents(self) -> list[str]:
        return self._split[0]

    @functools.cached_property
    def objects(self) -> list[dict[str, Any]]:
        parsed = (yaml.load(document, Loader=_LOADER) for document in self._split[1])
        return [d for d in parsed if isinstance(d, dict)]


_DOCUMENT_SEPARATOR = re.compile(r"^---[ \t]*$", re.M)
_CRD_KIND = re.compile(r"^kind:[ \t]*CustomResourceDefinition[ \t]*$", re.M)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class StackRender:
    stack: str
    rendered: list[RenderedRelease]
    unavailable: dict[str, ChartUnavailable]

    @property
    def missing_charts(self) -> list[str]:
        """Releases not rendered for a reason other than a missing repository login."""
        return [f"{label}: {reason}" for label, reason in self.unavailable.items() if not reason.needs_login]

    def release(self, name: str) -> RenderedRelease:
        found = [r for r in self.rendered if r.release.name == name]
        if len(found) != 1:
            raise KeyError(f"{self.stack}: no single rendered release {name!r}")
        return found[0]


# ----------------------------------------------------------------------------------------------------------
# Releases of a plan
# ----------------------------------------------------------------------------------------------------------


def platform_config(stack: str, stacks_dir: Path | None = None) -> Any:
    """The stack's typed config (secrets are not part of it)."""
    return platform_config_of(stack_config(stack, stacks_dir=stacks_dir))


class BadStackConfig(Exception):
    """The stack's config is refused (the message holds one line per problem): the tools exit 2."""


def evaluated_stack(stack: str) -> tuple[Evaluation, Any]:
    """The stack's evaluation and typed config, or `BadStackConfig`."""
    from components.config import ConfigError

    try:
        config = platform_config(stack)
    except ConfigError as error:
        raise BadStackConfig(str(error)) from error
    evaluation = evaluate(stack)
    if not evaluation.ok:
        raise BadStackConfig("\n".join(evaluation.config_problems))
    return evaluation, config


def _kubernetes_versions(evaluation: Evaluation, config: Any) -> dict[str, str]:
    """Kubernetes version per cluster name: the AKS clusters' from the plan, an existing cluster's from config."""
    versions = {
        r.name.removesuffix("-cluster"): str(r.inputs["kubernetesVersion"])
        for r in evaluation.registrations
        if r.type == MANAGED_CLUSTER and isinstance(r.inputs.get("kubernetesVersion"), str)
    }
    existing = config.gpu_cluster.existing
    if existing is not None:
        versions.setdefault(f"{evaluation.stack}-gpu", existing.kubernetes_version)
    return versions


def releases(evaluation: Evaluation, config: Any) -> list[HelmRelease]:
    """Every Helm release the evaluation registered, by cluster and name."""
    by_urn = {r.urn: r for r in evaluation.registrations}
    versions = _kubernetes_versions(evaluation, config)
    secrets = secret_strings(evaluation)
    api_versions = (PROMETHEUS_OPERATOR_API,) if config.monitoring.prometheus_crds else ()
    found = []
    for registration in evaluation.registrations:
        if registration.type != HELM_RELEASE:
            continue
        cluster = cluster_of(registration, by_urn)
        if cluster not in versions:
            raise LookupError(f"release {registration.name}: no Kubernetes version known for cluster {cluster}")
        inputs = registration.inputs
        repository = stand_in(inputs.get("repositoryOpts"), ())
        found.append(
            HelmRelease(
                cluster=cluster,
                name=str(inputs.get("name") or registration.name),
                chart=str(inputs["chart"]),
                version=str(inputs["version"]),
                repository=repository.get("repo") if isinstance(repository, dict) else None,
                credentials=isinstance(repository, dict) and bool(repository.get("username")),
                namespace=str(stand_in(inputs.get("namespace"), ()) or "default"),
                values=stand_in(inputs.get("values") or {}, secrets),
                kubernetes_version=versions[cluster],
                api_versions=api_versions,
                include_crds=not inputs.get("skipCrds", False),
            )
        )
    return sorted(found, key=lambda release: (release.cluster, release.name))


# ----------------------------------------------------------------------------------------------------------
# Charts
# ----------------------------------------------------------------------------------------------------------


def charts_dir_default() -> Path:
    return Path(os.environ.get(CHARTS_DIR_ENV) or DEFAULT_CHARTS_DIR)


def _chart_at(folder: Path, release: HelmRelease) -> Path | None:
    chart_file = folder / "Chart.yaml"
    if not chart_file.is_file():
        return None
    chart = yaml.safe_load(chart_file.read_text(encoding="utf-8"))
    if chart.get("name") != release.chart_name or str(chart.get("version")).lstrip("v") != release.version.lstrip("v"):
        raise ChartUnavailable(
            f"{folder} holds {chart.get('name')} {chart.get('version')}, not {release.chart_name} {release.version}"
        )
    return folder


def _helm_env(home: Path) -> dict[str, str]:
    """Helm's repository and registry state kept in a scratch folder, away from the user's."""
    return {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def _run(args: list[str], env: Mapping[str, str], stdin: str | None = None) -> None:
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, env=dict(env), check=False)
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()
        raise ChartUnavailable(f"{' '.join(args[1:3])}: {message[-1] if message else f'exit {result.returncode}'}")


def pull_chart(release: HelmRelease, helm: Path, cache_dir: Path = PULLED_CHARTS_DIR) -> Path:
    """The chart from its pinned repository (an OCI registry, or an HTTP repository, NGC with `NGC_API_KEY`)."""
    target = cache_dir / f"{release.chart_name}-{release.version}"
    if (cached := _chart_at(target, release)) is not None:
        return cached
    if (reason := release.pullable) is not None:
        raise ChartUnavailable(reason, needs_login=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        env = _helm_env(Path(scratch))
        untar = ["--version", release.version, "--untar", "--untardir", str(Path(scratch) / "chart")]
        if release.oci:
            _run([str(helm), "pull", release.chart, *untar], env)
        elif release.credentials:
            # The key goes to helm on stdin, never on a command line.
            login = ["--username", "$oauthtoken", "--password-stdin"]
            _run([str(helm), "repo", "add", "ngc", str(release.repository), *login], env, os.environ["NGC_API_KEY"])
            _run([str(helm), "pull", f"ngc/{release.chart}", *untar], env)
        else:
            _run([str(helm), "pull", release.chart, "--repo", str(release.repository), *untar], env)
        os.replace(Path(scratch) / "chart" / release.chart_name, target)
    found = _chart_at(target, release)
    assert found is not None
    return found


def chart_source(release: HelmRelease, charts_dir: Path, helm: Path, *, offline: bool) -> Path:
    """The chart folder of a release: from `charts_dir`, else pulled (unless offline)."""
    if (local := _chart_at(charts_dir / f"{release.chart_name}-{release.version}", release)) is not None:
        return local
    if (reason := release.pullable) is not None:
        raise ChartUnavailable(
            f"{release.chart_name} {release.version} is not in {charts_dir} and is {reason} to pull it "
            "(its values are checked against facts/charts)",
            needs_login=True,
        )
    if offline:
        raise ChartUnavailable(f"{release.chart_name}-{release.version} is not in {charts_dir} (offline: not pulled)")
    return pull_chart(release, helm)


# ----------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------


def template_args(release: HelmRelease, chart_dir: Path, helm: Path) -> list[str]:
    args = [str(helm), "template", release.name, str(chart_dir), "--namespace", release.namespace]
    args += ["--kube-version", release.kubernetes_version, "--skip-tests", "--values", "-"]
    if release.include_crds:
        args.append("--include-crds")
    for api_version in release.api_versions:
        args += ["--api-versions", api_version]
    return args


@functools.cache
def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def render(release: HelmRelease, chart_dir: Path, helm: Path, cache_dir: Path | None = None) -> RenderedRelease:
    """`helm template` of one release; RenderError carries helm's message when a template or schema refuses.
    With `cache_dir`, a render of the same chart files, arguments, values and helm binary is reused."""
    args, values = template_args(release, chart_dir, helm), json.dumps(release.values, sort_keys=True)
    cached = None
    if cache_dir is not None:
        binary = helm.stat()
        key = json.dumps([args[1:], values, _tree_digest(chart_dir), str(helm), binary.st_size, binary.st_mtime_ns])
        cached = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()}.yaml"
        if cached.is_file():
            return RenderedRelease(release, cached.read_text())
    result = subprocess.run(args, input=values, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RenderError(f"{release.label} ({release.chart_name} {release.version}): {result.stderr.strip()}")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(result.stdout)
    return RenderedRelease(release, result.stdout)


def render_all(
    found: Iterable[HelmRelease], charts_dir: Path, helm: Path, *, offline: bool, cache_dir: Path | None = None
) -> tuple[list[RenderedRelease], dict[str, ChartUnavailable]]:
    """Render every release whose chart is available; the others map to why not (one line each).
    The helm processes run side by side: a stack's renders take about as long as its largest chart."""
    sources: list[tuple[HelmRelease, Path]] = []
    unavailable: dict[str, ChartUnavailable] = {}
    for release in found:
        try:
            sources.append((release, chart_source(release, charts_dir, helm, offline=offline)))
        except ChartUnavailable as reason:
            unavailable[release.label] = reason
    with ThreadPoolExecutor(max_workers=4) as pool:
        rendered = list(pool.map(lambda source: render(source[0], source[1], helm, cache_dir), sources))
    return rendered, unavailable


def render_stack(
    evaluation: Evaluation,
    config: Any,
    charts_dir: Path,
    helm: Path | None = None,
    *,
    offline: bool = False,
    cache_dir: Path | None = None,
) -> StackRender:
    found = releases(evaluation, config)
    rendered, unavailable = render_all(found, charts_dir, helm or helm_binary(), offline=offline, cache_dir=cache_dir)
    return StackRender(evaluation.stack, rendered, unavailable)


def write_rendered(stack_render: StackRender, out_dir: Path) -> list[Path]:
    """`<out_dir>/<cluster>/<release>.yaml` per rendered release; `out_dir` is replaced."""
    if out_dir.exists():
        for old in sorted(out_dir.rglob("*"), reverse=True):
            old.unlink() if old.is_file() else old.rmdir()
    written = []
    for rendered in stack_render.rendered:
        path = out_dir / rendered.release.cluster / f"{rendered.release.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered.text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m planner.charts", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack name; reads stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "build" / "plan", help="plan directory root")
    parser.add_argument(
        "--charts-dir",
        type=Path,
        default=None,
        help=f"chart sources (default ${CHARTS_DIR_ENV} or {DEFAULT_CHARTS_DIR})",
    )
    parser.add_argument("--offline", action="store_true", help="never pull a chart that is not in the charts folder")
    args = parser.parse_args(argv)
    try:
        evaluation, config = evaluated_stack(args.stack)
    except BadStackConfig as error:
        print(error, file=sys.stderr)
        return 2
    charts_dir = args.charts_dir or charts_dir_default()
    try:
        helm = helm_binary()
    except HelmUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    try:
        stack_render = render_stack(evaluation, config, charts_dir, helm, offline=args.offline)
    except RenderError as error:
        print(error, file=sys.stderr)
        return 1
    out_dir = args.out / args.stack / "rendered"
    written = write_rendered(stack_render, out_dir)
    print(f"Rendered {args.stack} with helm {helm_version(helm)}, charts from {charts_dir}:")
    for rendered, path in zip(stack_render.rendered, written, strict=True):
        release = rendered.release
        chart = f"{release.chart_name} {release.version}"
        shown = path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path
        print(
            f"  {release.label:34s} {chart:28s} k8s {release.kubernetes_version:5s} "
            f"{len(rendered.objects):4d} objects  {shown}"
        )
    for label, reason in stack_render.unavailable.items():
        print(f"  {label:34s} not rendered: {reason}")
    return 1 if stack_render.missing_charts else 0


if __name__ == "__main__":
    sys.exit(main())
