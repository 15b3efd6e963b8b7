"""NGC access in a namespace of the GPU cluster: the API key Secret, the nvcr.io image pull Secret and the login
to NGC's Helm repositories.

NVIDIA's charts reference the Secrets by name (`existingSecret: ngc-api`,
`existingImagePullSecret: nvcrimagepullsecret`); the key itself only ever travels as a secret Output.
"""

from __future__ import annotations

import base64
import json

import pulumi
import pulumi_kubernetes as k8s

from components.gpu import GpuWorkloadTarget
from components.kube import object_meta, secret
from components.network_policies import NamespaceSpec

NGC_API_SECRET = "ngc-api"
NGC_API_SECRET_KEY = "NGC_API_KEY"
NGC_PULL_SECRET = "nvcrimagepullsecret"
NGC_REGISTRY = "nvcr.io"
# The user name NGC expects with an API key, for the registry and the Helm repositories alike.
NGC_USERNAME = "$oauthtoken"


def _docker_config(api_key: str) -> str:
    auth = base64.b64encode(f"{NGC_USERNAME}:{api_key}".encode()).decode()
    return json.dumps({"auths": {NGC_REGISTRY: {"username": NGC_USERNAME, "password": api_key, "auth": auth}}})


class NgcCredentials(pulumi.ComponentResource):
    """`ngc_api_key` must be a secret Output (it is, from `llmops:ngcApiKey`); values derived from it
    with `apply` stay secret, and the Kubernetes provider also marks Secret data secret."""

    def __init__(
        self,
        name: str,
        namespace: pulumi.Input[str],
        ngc_api_key: pulumi.Output[str],
        provider: k8s.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmops:gpu:NgcCredentials", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        self.api_key_secret = secret(
            f"{name}-api",
            object_meta(NGC_API_SECRET, namespace),
            # NeMo reads NGC_API_KEY; the NIM chart reads NGC_API_KEY too, from the same Secret.
            string_data={NGC_API_SECRET_KEY: ngc_api_key},
            opts=child,
        )
        self.pull_secret = secret(
            f"{name}-pull",
            object_meta(NGC_PULL_SECRET, namespace),
            secret_type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": ngc_api_key.apply(_docker_config)},
            opts=child,
        )
        self.register_outputs({"apiKeySecret": NGC_API_SECRET, "pullSecret": NGC_PULL_SECRET})


class NgcNamespace:
    """A namespace on the GPU cluster for charts pulled from NGC (NeMo, NIM): the namespace, its NGC Secrets,
    and `helm_repository`, the login to the chart's NGC Helm repository.

    Not a ComponentResource: the namespace stays a child of the component that asks for it (`parent`), and so
    keeps its URN."""

    name: str
    namespace: k8s.core.v1.Namespace
    credentials: NgcCredentials
    helm_repository: k8s.helm.v3.RepositoryOptsArgs
    # What a chart in the namespace waits for: the namespace, its network policies and the NGC Secrets.
    ready: list[pulumi.Resource]

    def __init__(
        self,
        spec: NamespaceSpec,
        *,
        helm_repository: str,
        gpu: GpuWorkloadTarget,
        ngc_api_key: pulumi.Output[str],
        parent: pulumi.Resource,
    ) -> None:
        self.name = spec.name
        isolated = spec.create(parent=parent, provider=gpu.provider)
        self.namespace = isolated.namespace
        # The namespace's name Output carries the dependency on it.
        self.credentials = NgcCredentials(
            f"{gpu.cluster_name}-{spec.name}-ngc",
            self.namespace.metadata.name,
            ngc_api_key,
            gpu.provider,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        self.helm_repository = k8s.helm.v3.RepositoryOptsArgs(
            repo=helm_repository, username=NGC_USERNAME, password=pulumi.Output.secret(ngc_api_key)
        )
        self.ready = [*isolated.ready, self.credentials]
