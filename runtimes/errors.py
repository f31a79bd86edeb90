"""Exception types shared by every layer.

They live in ``runtimes`` because it is the lower layer: ``exporter`` imports
from here, never the other way round. Only the CLI turns them into a one-line
message and an exit code.
"""

from __future__ import annotations


class ShrinkwrapError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 1


class BadInputError(ShrinkwrapError):
    """The user gave something we cannot use (path, option value, file)."""

    exit_code = 2


class ArtifactError(BadInputError):
    """An artifact directory is missing files, has modified or foreign files."""

    exit_code = 3


class ParityError(ShrinkwrapError):
    """At least one artifact is outside its numerical tolerance."""

    exit_code = 4


class RuntimeUnavailable(ShrinkwrapError):
    """A runtime cannot run here (no GPU, no compiler, missing provider).

    Benchmarks turn it into a ``skipped`` cell with the message as reason.
    """


class RegressionError(ShrinkwrapError):
    """A run is worse than its baseline beyond a threshold (``shrinkwrap compare``)."""

    exit_code = 5
