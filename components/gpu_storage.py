"""StorageClasses the GPU workloads use on AKS: a premium SSD for model caches and an NFS share for training.

Both use the CSI drivers AKS enables by default. Parameters follow the drivers' documented StorageClass
parameters (kubernetes-sigs/azuredisk-csi-driver and azurefile-csi-driver, docs/driver-parameters.md).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kube import object_meta

# The Azure Files CSI driver opens the NFS share's storage account to the nodes' subnet by adding this service
# endpoint to it (azurefile-csi-driver, docs/driver-parameters.md: NFS needs a virtual network rule): the subnet
# must declare it too, or the next Subnet update from Pulumi removes it and NFS mounts fail.
NFS_SUBNET_SERVICE_ENDPOINT = "Microsoft.Storage"


def gpu_storage_classes(
    name: str,
    *,
    model_cache_class: str,
    shared_workspace_class: str,
    retain: bool,
    parent: pulumi.Resource,
    provider: k8s.Provider,
) -> list[k8s.storage.v1.StorageClass]:
    """`retain` keeps the Azure disk or share when its PVC is deleted (prod: a model download or a training
    workspace is expensive to recreate)."""
    reclaim_policy = "Retain" if retain else "Delete"
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    model_cache = k8s.storage.v1.StorageClass(
        f"{name}-model-cache",
        metadata=object_meta(model_cache_class),
        provisioner="disk.csi.azure.com",
        parameters={
            # Premium SSD v1, not v2: v2 only attaches to zonal VMs and allows no host caching.
            "skuName": "Premium_LRS",
            # Weights are written once and read on every start: the host read cache serves them.
            "cachingMode": "ReadOnly",
            "fsType": "ext4",
        },
        reclaim_policy=reclaim_policy,
        # A disk is zonal: create it where the pod lands, not before.
        volume_binding_mode="WaitForFirstConsumer",
        allow_volume_expansion=True,
        opts=opts,
    )
    shared_workspace = k8s.storage.v1.StorageClass(
        f"{name}-shared-workspace",
        metadata=object_meta(shared_workspace_class),
        provisioner="file.csi.azure.com",
        # NFS shares exist only on premium (FileStorage) accounts; the driver creates the account in the node
        # resource group and opens it to the cluster subnet. Premium shares start at 100 GiB.
        parameters={"skuName": "Premium_LRS", "protocol": "nfs"},
        mount_options=["nconnect=4"],
        reclaim_policy=reclaim_policy,
        volume_binding_mode="Immediate",
        allow_volume_expansion=True,
        opts=opts,
    )
    return [model_cache, shared_workspace]
