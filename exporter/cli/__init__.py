"""The ``shrinkwrap`` command line: thin typer commands over the library, one module per command group.

The library raises its own exception types; only :func:`exporter.cli.app.cli_errors`
turns them into a one-line message and an exit code.
"""

# Before anything imports torch: on a busy machine OpenMP threads sleep instead of spinning (runtimes.openmp).
from runtimes.openmp import choose_wait_policy  # noqa: I001

choose_wait_policy()

# Importing a command module registers its commands; `shrinkwrap --help` lists them in this order.
from exporter.cli import catalog  # noqa: F401, I001
from exporter.cli import export  # noqa: F401
from exporter.cli import check  # noqa: F401
from exporter.cli import bench  # noqa: F401
from exporter.cli import compare  # noqa: F401
from exporter.cli import run  # noqa: F401
from exporter.cli import analysis  # noqa: F401
from exporter.cli import study  # noqa: F401
from exporter.cli.app import app

__all__ = ["app"]
