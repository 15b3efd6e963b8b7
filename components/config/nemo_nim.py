"""NeMo microservices and the NIM model servers on the GPU cluster."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from components.catalog import MODEL_DISK_GIB, MODEL_MIN_GPUS
from components.config.base import DnsLabel, Model, Quantity


class NemoConfig(Model):
    namespace: DnsLabel = "nemo"
    customization_targets: list[str] = Field(default_factory=lambda: ["meta/llama-3.1-8b-instruct@2.0"], min_length=1)
    training_workspace_size: Quantity = "200Gi"
    # Base-model weights the Customizer downloads once per target; NVIDIA sizes this at 200 GB or more.
    models_storage_size: Quantity = "200Gi"
    data_store_size: Quantity = "100Gi"
    external_postgres_host: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
        description="PostgreSQL server for every NeMo service instead of the chart's own; each service reads its "
        "password from the Secret `<service>-postgres` (key `password`) in the NeMo namespace",
    )
    guardrails: bool = True
    # The Entity Store namespace that fine-tuned adapters are registered under, where NIM discovers them.
    adapter_namespace: DnsLabel = "llmops"

    @field_validator("customization_targets")
    @classmethod
    def _target_form(cls, value: list[str]) -> list[str]:
        for target in value:
            if not re.fullmatch(r"[a-z0-9-]+/[a-z0-9.-]+@[0-9.]+", target):
                raise ValueError(
                    f"each target is <namespace>/<model>@<version>, e.g. meta/llama-3.1-8b-instruct@2.0 (got {target!r})"  # noqa: E501
                )
        return value


class LoraConfig(Model):
    enabled: bool = True
    max_gpu_loras: int = Field(8, ge=1, le=128)
    max_cpu_loras: int = Field(16, ge=1, le=1024)
    refresh_interval_seconds: int = Field(60, ge=10)

    @model_validator(mode="after")
    def _cpu_holds_gpu(self) -> Self:
        if self.max_cpu_loras < self.max_gpu_loras:
            raise ValueError(f"maxCpuLoras: must be >= maxGpuLoras (got {self.max_cpu_loras} < {self.max_gpu_loras})")
        return self


class NimAutoscalingConfig(Model):
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(1, ge=1)
    metric: Literal["gpu-cache-usage", "cpu"] = "gpu-cache-usage"
    target: int = Field(75, ge=1, le=100, description="percent")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas: must be <= maxReplicas (got {self.min_replicas} > {self.max_replicas})")
        return self


class NimModelConfig(Model):
    name: DnsLabel
    model: str = Field(pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$")
    image: str = Field(pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+$")
    image_tag: str = Field(pattern=r"^[0-9][0-9A-Za-z._-]*$", description="pinned; never 'latest'")
    gpus: int = Field(1, ge=1, le=8)
    model_cache_size_gib: int | None = Field(None, ge=1)
    lora: LoraConfig = LoraConfig()
    autoscaling: NimAutoscalingConfig = NimAutoscalingConfig()

    @model_validator(mode="after")
    def _cache_fits_model(self) -> Self:
        if self.model not in MODEL_DISK_GIB and self.model_cache_size_gib is None:
            raise ValueError(f"modelCacheSizeGib: required for {self.model!r}, whose size is not in the model table")
        needed = MODEL_DISK_GIB.get(self.model, 0)
        if self.model_cache_size_gib is not None and self.model_cache_size_gib < needed:
            raise ValueError(
                f"modelCacheSizeGib: must be >= {needed} for {self.model} (got {self.model_cache_size_gib})"
            )
        return self

    @model_validator(mode="after")
    def _fits_release(self) -> Self:
        # The name is the Helm release and StatefulSet name; pods carry `<name>-<10-char hash>` in a 63-char label.
        if len(self.name) > 52:
            raise ValueError(f"name: at most 52 characters (got {len(self.name)})")
        needed = MODEL_MIN_GPUS.get(self.model, 1)
        if self.gpus < needed:
            raise ValueError(f"gpus: {self.model} needs at least {needed} GPUs for one replica (got {self.gpus})")
        return self

    @property
    def disk_gib(self) -> int:
        """The model's own footprint: what a pod downloads before it can serve."""
        return MODEL_DISK_GIB.get(self.model) or self.cache_size_gib

    @property
    def cache_size_gib(self) -> int:
        # Twice the weights: the download lands beside the previous version during an upgrade.
        return self.model_cache_size_gib or MODEL_DISK_GIB[self.model] * 2


def _default_models() -> list[NimModelConfig]:
    return [
        NimModelConfig(
            name="llama-3-1-8b-instruct",
            model="meta/llama-3.1-8b-instruct",
            image="nvcr.io/nim/meta/llama-3.1-8b-instruct",
            image_tag="1.8.6",
        )
    ]


class NimConfig(Model):
    namespace: DnsLabel = "nim"
    models: list[NimModelConfig] = Field(default_factory=_default_models, min_length=1)

    @field_validator("models")
    @classmethod
    def _unique(cls, value: list[NimModelConfig]) -> list[NimModelConfig]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique (got {names})")
        return value
