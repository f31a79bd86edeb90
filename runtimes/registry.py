"""The runtime registry, and every table derived from it.

Importing this module registers the built-in runtimes (one module each). A new
runtime is one module with a ``@register_runtime`` class, plus its import in
:data:`BUILTIN_MODULES`; a runtime registered from anywhere else (a plugin, a
test) appears in every table below the moment it is registered.
"""

from __future__ import annotations

import importlib

from runtimes.errors import BadInputError
from runtimes.manifest import Format
from runtimes.protocol import Runtime, RuntimeSpec, registered_specs

BUILTIN_MODULES = ("runtimes.eager", "runtimes.torchscript", "runtimes.libtorch_cpp", "runtimes.ort",
                   "runtimes.openvino", "runtimes.aoti", "runtimes.aoti_cpp")

for _module in BUILTIN_MODULES:
    importlib.import_module(_module)


def specs() -> list[RuntimeSpec]:
    """Every registered runtime, in registration order."""
    return registered_specs()


def runtime_names() -> list[str]:
    return [s.name for s in specs()]


def get_spec(name: str) -> RuntimeSpec:
    for spec in specs():
        if spec.name == name:
            return spec
    raise BadInputError(f"unknown runtime {name!r}; known runtimes: {', '.join(runtime_names())}")


def parse_runtime(name: str) -> str:
    """Validate a runtime name given by a user; returns it."""
    return get_spec(name.strip()).name


def get_runtime(name: str, threads: int | None = None) -> Runtime:
    return get_spec(name).create(threads)


def reference_runtime(fmt: str) -> RuntimeSpec:
    """The runtime that checks parity of, and by default loads, artifacts of format ``fmt``."""
    for spec in specs():
        if fmt in spec.reference_for:
            return spec
    raise BadInputError(f"no registered runtime is the reference for format {fmt!r}")


def parity_runtimes(fmt: str) -> list[RuntimeSpec]:
    """Where parity checks an artifact of format ``fmt``: its reference runtime, then every runtime that
    declares ``parity_for`` it (the portability check: OpenVINO for ONNX)."""
    return [reference_runtime(fmt), *(s for s in specs() if fmt in s.parity_for and fmt not in s.reference_for)]


def runs_references(spec: RuntimeSpec) -> bool:
    """Whether this runtime runs eager references (rather than deployable artifacts)."""
    return spec.runs(Format.EAGER)


def devices() -> list[str]:
    """The devices of the registered runtimes, in registration order."""
    return list(dict.fromkeys(s.device for s in specs()))


def formats() -> list[str]:
    """The formats some registered runtime runs, in registration order."""
    return list(dict.fromkeys(f for s in specs() for f in s.formats))
