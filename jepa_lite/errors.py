"""The kit's error for a setting that cannot work, shared by every trainer and command line."""


class ConfigError(ValueError):
    """A setting that cannot work; the message names it and the allowed values."""
