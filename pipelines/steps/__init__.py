"""Pipeline steps: one module per step, each a function plus a thin CLI (`python -m pipelines.steps`)."""

# Step name on the command line -> module; modules load lazily so a step imports only what it uses.
STEPS = {
    "prepare-dataset": "prepare_dataset",
    "prepare-benchmarks": "prepare_benchmarks",
    "upload-dataset": "upload_dataset",
    "customize": "customize",
    "evaluate-benchmarks": "evaluate_benchmarks",
    "evaluate-business": "evaluate_business",
    "judge": "judge",
    "gate": "gate",
    "deploy-adapter": "deploy_adapter",
    "discard-adapter": "discard_adapter",
    "cancel-jobs": "cancel_jobs",
    "log-to-mlflow": "log_to_mlflow",
}
