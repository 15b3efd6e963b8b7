"""NeMo microservices and the NIM model servers on the GPU cluster."""

from __future__ import annotations

import re
from typing import Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from components.catalog import MODEL_DISK_GIB, MODEL_MIN_GPUS
from components.config.base import DnsLabel, Model, Quantity
from policies.pack.pricing.schedule import WeeklyWindow, weekly_window


class NemoConfig(Model):
    namespace: DnsLabel = Field("nemo", description="namespace of the NeMo microservices")
    customization_targets: list[str] = Field(
        default_factory=lambda: ["meta/llama-3.1-8b-instruct@2.0"],
        min_length=1,
        description="models the Customizer fine-tunes, <namespace>/<model>@<version>",
    )
    training_workspace_size: Quantity = Field("200Gi", description="Customizer training workspace volume size")
    # Base-model weights the Customizer downloads once per target; NVIDIA sizes this at 200 GB or more.
    models_storage_size: Quantity = Field(
        "200Gi", description="volume for the base-model weights the Customizer downloads"
    )
    data_store_size: Quantity = Field("100Gi", description="Data Store volume size (datasets)")
    external_postgres_host: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
        description="PostgreSQL server for every NeMo service instead of the chart's own; each service reads its "
        "password from the Secret `<service>-postgres` (key `password`) in the NeMo namespace",
    )
    guardrails: bool = Field(True, description="deploy NeMo Guardrails")
    # The Entity Store namespace that fine-tuned adapters are registered under, where NIM discovers them.
    adapter_namespace: DnsLabel = Field(
        "llmops", description="Entity Store namespace fine-tuned adapters are registered under"
    )

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
    enabled: bool = Field(True, description="serve LoRA adapters from the Entity Store (NIM_PEFT_SOURCE)")
    max_gpu_loras: int = Field(8, ge=1, le=128, description="adapters held in GPU memory at once")
    max_cpu_loras: int = Field(16, ge=1, le=1024, description="adapters cached in host memory")
    refresh_interval_seconds: int = Field(60, ge=10, description="seconds between NIM's checks for new adapters")

    @model_validator(mode="after")
    def _cpu_holds_gpu(self) -> Self:
        """maxCpuLoras >= maxGpuLoras."""
        if self.max_cpu_loras < self.max_gpu_loras:
            raise ValueError(f"maxCpuLoras: must be >= maxGpuLoras (got {self.max_cpu_loras} < {self.max_gpu_loras})")
        return self


class NimAutoscalingConfig(Model):
    min_replicas: int = Field(1, ge=1, description="fewest replicas")
    max_replicas: int = Field(1, ge=1, description="most replicas")
    metric: Literal["gpu-cache-usage", "cpu"] = Field(
        "gpu-cache-usage", description="what scaling follows: KV-cache usage (needs Prometheus and KEDA) or CPU"
    )
    target: int = Field(75, ge=1, le=100, description="percent")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        """minReplicas <= maxReplicas."""
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas: must be <= maxReplicas (got {self.min_replicas} > {self.max_replicas})")
        return self


class NimScheduleConfig(Model):
    """Serve only inside a weekly window (KEDA cron scaler): outside it the model scales to zero replicas, and its GPU
    nodes, scaling from zero, are released."""

    timezone: str = Field("UTC", description="IANA time zone of start and end, e.g. Europe/Berlin")
    start: str = Field(description="cron 'minute hour * * day-of-week' when serving starts, e.g. '0 8 * * 1-5'")
    end: str = Field(description="cron when serving stops, same days as start, e.g. '0 19 * * 1-5'")
    replicas: int | None = Field(None, ge=1, description="replicas inside the window; default autoscaling.minReplicas")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"must be an IANA time zone such as Europe/Berlin (got {value!r})") from None
        return value

    @model_validator(mode="after")
    def _weekly(self) -> Self:
        """start and end are cron times on the same days that make a weekly window."""
        try:
            weekly_window(self.start, self.end)
        except ValueError as error:
            raise ValueError(f"start: {error}") from None
        return self

    @property
    def window(self) -> WeeklyWindow:
        return weekly_window(self.start, self.end)


class NimModelConfig(Model):
    name: DnsLabel = Field(description="release name of this NIM (a DNS label, at most 52 characters)")
    model: str = Field(
        pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$",
        description="model NIM serves, <org>/<model>, e.g. meta/llama-3.1-8b-instruct",
    )
    image: str = Field(
        pattern=r"^[a-z0-9.-]+(/[a-z0-9._-]+)+$",
        description="NIM image repository, e.g. nvcr.io/nim/meta/llama-3.1-8b-instruct",
    )
    image_tag: str = Field(pattern=r"^[0-9][0-9A-Za-z._-]*$", description="pinned; never 'latest'")
    gpus: int = Field(1, ge=1, le=8, description="GPUs per replica")
    model_cache_size_gib: int | None = Field(
        None, ge=1, description="model cache volume; default: twice the model's size from the model table"
    )
    lora: LoraConfig = Field(LoraConfig(), description="LoRA adapter serving")
    autoscaling: NimAutoscalingConfig = Field(NimAutoscalingConfig(), description="replica autoscaling")
    schedule: NimScheduleConfig | None = Field(None, description="serve only in a weekly window (scale to zero)")

    @model_validator(mode="after")
    def _schedule_within_bounds(self) -> Self:
        """schedule.replicas <= autoscaling.maxReplicas."""
        if self.schedule is not None and (self.schedule.replicas or 0) > self.autoscaling.max_replicas:
            raise ValueError(
                f"schedule.replicas: must be <= autoscaling.maxReplicas ({self.autoscaling.max_replicas}) "
                f"(got {self.schedule.replicas})"
            )
        return self

    @property
    def scheduled_replicas(self) -> int:
        """Replicas inside the serving window."""
        return (self.schedule.replicas if self.schedule else None) or self.autoscaling.min_replicas

    @model_validator(mode="after")
    def _cache_fits_model(self) -> Self:
        """modelCacheSizeGib holds the model (required for a model not in the model table)."""
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
        """name is at most 52 characters; gpus covers the model's minimum GPUs per replica."""
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
    namespace: DnsLabel = Field("nim", description="namespace of the NIM releases")
    models: list[NimModelConfig] = Field(
        default_factory=_default_models,
        min_length=1,
        description="the models served; the first is the base model pipelines fine-tune",
    )

    @field_validator("models")
    @classmethod
    def _unique(cls, value: list[NimModelConfig]) -> list[NimModelConfig]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique (got {names})")
        return value
