"""User-facing errors: each one is printed as a single line by the CLI (exit code 2)."""


class DeepclsError(Exception):
    """Base class for errors caused by bad input rather than by a bug."""


class ConfigError(DeepclsError, ValueError):
    """A run configuration or model option that cannot be used."""


class DataError(DeepclsError):
    """A dataset file that is missing, corrupt or of the wrong form."""


class StoreError(DeepclsError):
    """The run store cannot be read or written."""


class ClusterError(DeepclsError):
    """A Ray cluster that cannot be reached, or that refuses this client."""
