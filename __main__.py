"""Entry point for `pulumi up` / `pulumi preview`: load config, build the platform, export outputs."""

import pulumi

from components import config as platform_config
from components.platform import Platform

try:
    config, secrets = platform_config.load()
except platform_config.ConfigError as error:
    # One line per problem and no traceback: the message is the whole story.
    raise pulumi.RunError(str(error)) from None

platform = Platform("llmops", config, secrets)
for key, value in platform.outputs.items():
    pulumi.export(key, value)
