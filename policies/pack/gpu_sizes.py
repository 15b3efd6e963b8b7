"""The Azure GPU VM sizes, with their source: the management cluster refuses them, the GPU rules
recognise GPU pools by them, the pricer counts their GPUs, and the program validates pools against them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSku:
    gpus: int
    gpu_model: str
    gpu_memory_gib: int
    vcpus: int
    memory_gib: int
    # The VM family whose regional vCPU quota the size draws on, as the Compute usage and Microsoft.Quota APIs
    # name it (`az vm list-usage` name.value, `az quota show --resource-name`); Azure compares them case-insensitively.
    quota_family: str


# Azure GPU VM sizes (learn.microsoft.com, "Sizes for virtual machines in Azure", GPU accelerated
# families NCasT4_v3, NC A100 v4, NC H100 v5, ND A100 v4, ND H100 v5, ND H200 v5; checked 2026-11).
# Only full-GPU sizes the GPU Operator's data center driver serves: NCv3 (V100) was retired on
# 2025-09-30 (learn.microsoft.com, "NCv3 and NC6s NC12s NC24s Retirement") and the NVads A10 v5
# sizes are vGPU slices that need the GRID driver. Quota families: learn.microsoft.com, "Azure VM quotas" and
# the GPU family names the usage API returns per region (e.g. westeurope: standardNCADSH100v5Family).
GPU_SKUS: dict[str, GpuSku] = {
    "Standard_NC4as_T4_v3": GpuSku(1, "T4", 16, 4, 28, "standardNCASv3_T4Family"),
    "Standard_NC8as_T4_v3": GpuSku(1, "T4", 16, 8, 56, "standardNCASv3_T4Family"),
    "Standard_NC16as_T4_v3": GpuSku(1, "T4", 16, 16, 110, "standardNCASv3_T4Family"),
    "Standard_NC64as_T4_v3": GpuSku(4, "T4", 16, 64, 440, "standardNCASv3_T4Family"),
    "Standard_NC24ads_A100_v4": GpuSku(1, "A100", 80, 24, 220, "standardNCADSA100v4Family"),
    "Standard_NC48ads_A100_v4": GpuSku(2, "A100", 80, 48, 440, "standardNCADSA100v4Family"),
    "Standard_NC96ads_A100_v4": GpuSku(4, "A100", 80, 96, 880, "standardNCADSA100v4Family"),
    "Standard_ND96asr_v4": GpuSku(8, "A100", 40, 96, 900, "standardNDASv4_A100Family"),
    "Standard_ND96amsr_A100_v4": GpuSku(8, "A100", 80, 96, 1900, "standardNDAMSv4_A100Family"),
    "Standard_NC40ads_H100_v5": GpuSku(1, "H100 NVL", 94, 40, 320, "standardNCADSH100v5Family"),
    "Standard_NC80adis_H100_v5": GpuSku(2, "H100 NVL", 94, 80, 640, "standardNCADSH100v5Family"),
    "Standard_ND96isr_H100_v5": GpuSku(8, "H100", 80, 96, 1900, "standardNDSH100v5Family"),
    "Standard_ND96isr_H200_v5": GpuSku(8, "H200", 141, 96, 1850, "standardNDISRH200V5Family"),
}


def is_gpu_vm_size(vm_size: str) -> bool:
    """True for any Azure N-series size, known to the table or not: the management cluster must
    refuse every GPU size, including ones newer than this table."""
    family = vm_size.removeprefix("Standard_")
    return vm_size in GPU_SKUS or family[:2] in {"NC", "ND", "NV", "NG"}
