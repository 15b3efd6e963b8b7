"""The platform's component resources, one per concern, and their typed configuration."""
