"""Monthly cost of a plan, from the captured registrations and a dated table of Azure list prices
(`prices-azure.json`, shipped with the pack so the budget policy prices a stack wherever it runs).

Each priced resource type has one pricer (see `estimate.PRICERS`); a type that is neither priced, free
nor usage-based is listed as "not priced" so a new kind of resource is noticed, and a size the table
lacks is a problem (the budget policy refuses to vouch for a cost it cannot compute).

Three monthly figures, 730 hours each:
- idle: every autoscaler at its minimum (system pools, `AgentPool.minCount`);
- serving: idle plus the GPU nodes that the model servers' minimum replicas need when the GPU pools
  scale from zero (they would be added within minutes of the first deploy and then stay);
- peak: every autoscaler at its maximum and every scalable claim at its largest.
Usage-based charges (blob data, log ingestion, egress) are listed with their rates, outside the totals.
A cluster this stack does not create (an existing cluster such as NVIDIA DGX Cloud) is not billed
through Azure; its GPUs count only when a rate is configured (`llmops:budget.existingClusterGpuHourUsd`).

Modules: `report` (what an estimate says), `prices` (the table), `inputs` (the stack as pricers see
it), `clusters`, `azure`, `claims` and `gpus` (the pricers by concern), `estimate` (putting it together).
"""
