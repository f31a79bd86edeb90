"""Variant builders, one module each, registered by name (see :mod:`exporter.builders.base`).

Importing this package registers the built-in builders; a new builder is one
module with a ``@register_builder`` class, plus its import here.
"""

from exporter.builders import budgeted, floating, nncf_peer, peer, quantized, slim  # noqa: F401
