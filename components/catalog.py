"""The catalog the program sizes against, each entry with its source.

These are data, not behaviour: the GPU VM sizes Azure offers (so a typo never reaches ARM) and the
disk footprint and GPU count of the models NIM serves (so a model cache or a replica is never too small).
Upstream chart and CRD facts, derived by tools/derive_reference_facts.py, live in facts/ instead.
"""

from __future__ import annotations

# The GPU VM sizes ship with the policy pack, which rules on them too; the program reads them here.
from policies.pack.gpu_sizes import GPU_SKUS as GPU_SKUS
from policies.pack.gpu_sizes import is_gpu_vm_size as is_gpu_vm_size

# On-disk size of each NIM model profile (bf16 weights plus tokenizer and engine files), in GiB,
# from the NIM for LLMs support matrix (docs.nvidia.com/nim/large-language-models, 2026-11).
# The model cache PVC must be at least this large plus headroom for an engine rebuild.
MODEL_DISK_GIB: dict[str, int] = {
    "meta/llama-3.2-1b-instruct": 3,
    "meta/llama-3.2-3b-instruct": 7,
    "meta/llama-3.1-8b-instruct": 16,
    "meta/llama-3.3-70b-instruct": 141,
    "meta/llama-3.1-70b-instruct": 141,
    "mistralai/mistral-7b-instruct-v0.3": 15,
    "nvidia/llama-3.1-nemotron-nano-8b-v1": 16,
    "nvidia/llama-3.3-nemotron-super-49b-v1": 100,
}

# Minimum GPUs (80 GB class) each model needs for one replica with tensor parallelism.
MODEL_MIN_GPUS: dict[str, int] = {
    "meta/llama-3.2-1b-instruct": 1,
    "meta/llama-3.2-3b-instruct": 1,
    "meta/llama-3.1-8b-instruct": 1,
    "meta/llama-3.3-70b-instruct": 4,
    "meta/llama-3.1-70b-instruct": 4,
    "mistralai/mistral-7b-instruct-v0.3": 1,
    "nvidia/llama-3.1-nemotron-nano-8b-v1": 1,
    "nvidia/llama-3.3-nemotron-super-49b-v1": 2,
}
