"""Offline checks of what the program authors against facts derived from upstream (see facts/ and
tools/derive_reference_facts.py): Helm values keys of pinned charts and Kubernetes object schemas."""
