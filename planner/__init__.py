"""Offline planner: evaluate the Pulumi program under mocks, capture what it registers, check it
with the policy pack, and write a reviewable plan. No Pulumi CLI, cloud credentials or cluster."""
