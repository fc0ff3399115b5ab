"""Errors the library raises on purpose; the CLI prints them as one line."""


class CharclfError(Exception):
    """Base class: something the user can fix (bad data, bad checkpoint, no device...)."""


class MissingExtra(CharclfError, ImportError):
    """An optional package is not installed; the message names the pip command that installs it."""


class DataError(CharclfError):
    """The dataset is missing, empty, unreadable or unusable."""


class CheckpointError(CharclfError):
    """A file is missing, is not a charclf checkpoint, or does not fit the model."""


class DeviceError(CharclfError):
    """The requested device does not exist on this machine."""


class FetchError(CharclfError):
    """Downloading or verifying the dataset archive failed; nothing was written."""


class TrainingDiverged(CharclfError):
    """The loss or the outputs became NaN or infinite; the last good checkpoint is kept."""
