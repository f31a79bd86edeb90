"""The project's exception types (re-exported so exporter code imports one place)."""

from runtimes.errors import (  # noqa: F401
    ArtifactError,
    BadInputError,
    ParityError,
    RuntimeUnavailable,
    ShrinkwrapError,
)


class WeightsError(BadInputError):
    """Weights cannot be obtained or do not fit the architecture."""


class DataError(BadInputError):
    """A data directory is missing, empty or unusable."""


class ExportError(ShrinkwrapError):
    """A built model cannot be written in a format (e.g. an operator torch's ONNX exporter cannot export
    at this input size); exit 1, one line."""
