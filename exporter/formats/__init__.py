"""Format writers, one module each, registered by format name (see :mod:`exporter.formats.base`).

Importing this package registers the built-in writers; a new format is one module
with a ``@register_format`` class, plus its import here (and a runtime that runs it).
"""

from exporter.formats import eager, onnx, pt2, torchscript  # noqa: F401
