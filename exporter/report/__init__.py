"""The report: markdown and figures rendered from the typed records of a run directory.

It reads the benchmark's results, the manifest, parity, and the analyses'
records by type, and finds rows by role through the variant and runtime
registries. A new section is one ``@register_section`` function.
"""

from exporter.report.render import render_report
from exporter.report.sections import register_section

__all__ = ["register_section", "render_report"]
