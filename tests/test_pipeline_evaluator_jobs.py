"""Issue 13: the business and judge evaluations run as NeMo Evaluator jobs too, so the registered workflows give
the Evaluator the judge NIM's in-cluster URL (as evaluator-nim-url is for the model under test)."""

from __future__ import annotations

from support.plans import Plan
from test_pipeline_wiring import WORKFLOWS, workflow_arguments


def test_the_evaluator_reaches_the_judge_inside_the_cluster(any_stack: Plan) -> None:
    in_cluster = {m["model"]: m["url"] for m in any_stack.outputs["nim"]["models"]}
    for workflow in WORKFLOWS:
        arguments = workflow_arguments(any_stack, workflow)
        assert arguments["evaluator-judge-url"] == in_cluster[arguments["judge-model"]]
        assert arguments["evaluator-judge-url"] != arguments["judge-url"]
