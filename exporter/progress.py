"""How library functions report progress without knowing who listens.

The CLI passes a rich-backed reporter; library users get :data:`SILENT` by default.
"""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Iterator, Protocol

# update(done, total, label="") of a task; total None = unknown; label describes the current item.
Update = Callable[..., None]


class Reporter(Protocol):
    def say(self, message: str) -> None:
        """One line of progress."""

    def task(self, label: str) -> ContextManager[Update]:
        """A counted task (decoding images, measuring cells): yields ``update(done, total, label="")``."""


class Silent:
    def say(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def task(self, label: str) -> Iterator[Update]:
        yield lambda done, total, label="": None


SILENT: Reporter = Silent()
