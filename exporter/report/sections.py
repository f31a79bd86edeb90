"""The registry of report sections: ``(ReportContext) -> str`` functions, rendered in order.

A new section is one function with ``@register_section(name, order)`` in any
module the report imports; an empty string leaves it out of the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from exporter.report.context import ReportContext

Section = Callable[[ReportContext], str]

# Sections a caller passes to render_report(extra_sections=...) go at this place.
EXTRA_ORDER = 75


@dataclass(frozen=True)
class RegisteredSection:
    name: str
    order: int
    render: Section


_SECTIONS: dict[str, RegisteredSection] = {}


def register_section(name: str, order: int) -> Callable[[Section], Section]:
    def deco(fn: Section) -> Section:
        if name in _SECTIONS:
            raise ValueError(f"report section {name!r} registered twice")
        _SECTIONS[name] = RegisteredSection(name, order, fn)
        return fn

    return deco


def unregister_section(name: str) -> None:
    _SECTIONS.pop(name, None)


def registered_sections() -> list[RegisteredSection]:
    return sorted(_SECTIONS.values(), key=lambda s: s.order)
