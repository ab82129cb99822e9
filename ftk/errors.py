"""Errors that ftk raises for bad input. Each says what was received and what is expected."""


class FtkError(Exception):
    """Base class: an error the user can fix. The CLI prints it as one line."""


class ConfigError(FtkError, ValueError):
    """A configuration key, type or value is invalid."""


class DataError(FtkError, ValueError):
    """Training data is missing, malformed or inconsistent."""


class PresetError(FtkError, ValueError):
    """A backbone preset cannot be resolved or loaded."""


class ExportError(FtkError, RuntimeError):
    """An export could not be written or published."""


class VerificationError(ExportError):
    """An exported model does not match the Keras model it came from."""


class ClusterError(FtkError, RuntimeError):
    """Another process of a multi-process job stopped, or the job's environment is wrong."""
