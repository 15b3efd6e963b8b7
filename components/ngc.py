"""NGC credentials in a namespace: the API key Secret and the nvcr.io image pull Secret.

NVIDIA's charts reference these by name (`existingSecret: ngc-api`,
`existingImagePullSecret: nvcrimagepullsecret`); the key itself only ever travels as a secret Output.
"""

from __future__ import annotations

import base64
import json

import pulumi
import pulumi_kubernetes as k8s

NGC_API_SECRET = "ngc-api"
NGC_API_SECRET_KEY = "NGC_API_KEY"
NGC_PULL_SECRET = "nvcrimagepullsecret"
NGC_REGISTRY = "nvcr.io"


def _docker_config(api_key: str) -> str:
    auth = base64.b64encode(f"$oauthtoken:{api_key}".encode()).decode()
    return json.dumps({"auths": {NGC_REGISTRY: {"username": "$oauthtoken", "password": api_key, "auth": auth}}})


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
        labels = {"app.kubernetes.io/part-of": "llmops-platform"}
        self.api_key_secret = k8s.core.v1.Secret(
            f"{name}-api",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NGC_API_SECRET, namespace=namespace, labels=labels),
            type="Opaque",
            # NeMo reads NGC_API_KEY; the NIM chart reads NGC_API_KEY too, from the same Secret.
            string_data={NGC_API_SECRET_KEY: ngc_api_key},
            opts=child,
        )
        self.pull_secret = k8s.core.v1.Secret(
            f"{name}-pull",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=NGC_PULL_SECRET, namespace=namespace, labels=labels),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": ngc_api_key.apply(_docker_config)},
            opts=child,
        )
        self.register_outputs({"apiKeySecret": NGC_API_SECRET, "pullSecret": NGC_PULL_SECRET})
