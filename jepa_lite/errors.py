"""The kit's errors shared by every trainer and command line: a setting that cannot work, a run that diverged."""


class ConfigError(ValueError):
    """A setting that cannot work; the message names it and the allowed values."""


class TrainingDiverged(RuntimeError):
    """The loss or the weights became NaN or infinite; the message names the last good checkpoint."""
