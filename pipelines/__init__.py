"""LLM pipeline templates (Argo YAML) and the Python code their steps run."""
