"""The typer app, its consoles, and the one place library errors become a line and an exit code."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import sys
import time
from typing import Annotated, Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from runtimes.errors import ShrinkwrapError

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Compress torchvision CNNs, export TorchScript + ONNX, gate on parity, benchmark runtimes.")
# Tables are wide; when output is not a terminal rich would squeeze them into 80 columns.
_WIDTH = None if sys.stdout.isatty() else 160
console = Console(stderr=True, width=_WIDTH)
out_console = Console(width=_WIDTH)


def versions() -> str:
    """shrinkwrap's version and the libraries that decide its numbers (read without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    ort = v("onnxruntime-gpu") if v("onnxruntime-gpu") != "not installed" else v("onnxruntime")
    return (f"shrinkwrap {v('shrinkwrap')} (torch {v('torch')}, torchvision {v('torchvision')}, "
            f"onnxruntime {ort}, onnx {v('onnx')})")


def _print_version(value: bool) -> None:
    if value:
        out_console.print(versions(), highlight=False)
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="print the versions and exit")] = False) -> None:
    """Compress torchvision CNNs, export TorchScript + ONNX, gate on parity, benchmark runtimes."""


def command_line() -> str:
    return "shrinkwrap " + " ".join(shlex.quote(a) for a in sys.argv[1:])


# An error is one line a person can read at a glance; the library puts what matters first (the artifact, the
# runtime, the metric and its limit) and keeps every figure in the run's JSON and report.
MAX_ERROR_CHARS = 200


def terminal_line(msg: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``msg`` cut to ``limit`` characters (an ellipsis says it was)."""
    return msg if len(msg) <= limit else msg[:limit - 1].rstrip() + "…"


def cli_errors(fn: Callable) -> Callable:
    """Map the library's exceptions to one line on stderr and the exception's exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ShrinkwrapError as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            console.print(f"[bold red]error:[/] {terminal_line(msg)}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            console.print("[bold red]error:[/] interrupted; nothing partial was published")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # an internal failure, not bad input
            if os.environ.get("SHRINKWRAP_DEBUG"):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            console.print(f"[bold red]internal error:[/] {type(exc).__name__}: {first} "
                          "(set SHRINKWRAP_DEBUG=1 for the traceback)", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def say(msg: str) -> None:
    console.print(f"[cyan]•[/] {msg}", highlight=False, soft_wrap=True)


class RichReporter:
    """The library's :class:`~exporter.progress.Reporter`, on the terminal: lines and progress bars."""

    def say(self, message: str) -> None:
        say(message)

    @contextlib.contextmanager
    def task(self, title: str) -> Iterator[Callable[..., None]]:
        t0 = time.perf_counter()
        with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                      transient=False) as bar:
            task = bar.add_task(title, total=None, rate="")

            def update(done: int, total: int | None, label: str = "") -> None:
                rate = f"{done / max(time.perf_counter() - t0, 1e-9):.1f}/s"
                bar.update(task, completed=done, total=total, description=label or title, rate=rate)

            yield update


REPORTER = RichReporter()
