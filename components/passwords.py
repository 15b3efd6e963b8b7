"""Secrets nobody needs to choose: generated once, kept in the stack's state, secret end to end."""

from __future__ import annotations

import pulumi
import pulumi_random as random

# Punctuation the generated passwords draw from: none of it needs escaping in the MLflow chart's INI file, a
# postgresql:// URI, a psql literal or an HTTP header (see components.config.secrets).
PASSWORD_SPECIALS = "-_.~!*+="


def generated_password(name: str, parent: pulumi.Resource, *, special: bool = True) -> pulumi.Output[str]:
    """A 32-character password with every character class Azure asks of a server admin (3 of 4), as a secret
    Output. Kept in the stack's state: it changes only when the resource is replaced."""
    password = random.RandomPassword(
        name,
        length=32,
        special=special,
        override_special=PASSWORD_SPECIALS if special else None,
        min_upper=2,
        min_lower=2,
        min_numeric=2,
        min_special=2 if special else 0,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.secret(password.result)
