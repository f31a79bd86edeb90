"""Deliberate damage to an ONNX artifact, re-signed in the manifest so that only parity can notice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from runtimes.manifest import read_manifest, write_manifest
from runtimes.onnx_layers import scope_of
from runtimes.records import sha256_file


def resign(run_dir: Path, path: str) -> None:
    """Record the changed file's bytes and sha256 in the manifest."""
    m = read_manifest(run_dir)
    f = run_dir / path
    fix = lambda r: dataclasses.replace(r, bytes=f.stat().st_size, sha256=sha256_file(f)) if r.path == path else r  # noqa: E731
    write_manifest(run_dir, dataclasses.replace(m, artifacts=[fix(a) for a in m.artifacts],
                                                references=[fix(r) for r in m.references]))


def scale_int8_weight(run_dir: Path, path: str, module: str, factor: float) -> None:
    """Multiply the weight scale of ``module``'s INT8 weight (the DequantizeLinear of a constant 4-D
    integer tensor in its scope) by ``factor``, then re-sign the manifest."""
    proto = onnx.load(str(run_dir / path))
    constants = {n.output[0]: n for n in proto.graph.node if n.op_type == "Constant"}
    inits = {t.name: t for t in proto.graph.initializer}

    def tensor(name: str):
        if name in inits:
            return inits[name]
        node = constants.get(name)
        return next(a.t for a in node.attribute if a.name == "value") if node is not None else None

    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or scope_of(node.name) != module:
            continue
        weight = tensor(node.input[0])
        if weight is None or len(weight.dims) != 4:
            continue
        scale = tensor(node.input[1])
        scaled = numpy_helper.from_array((numpy_helper.to_array(scale) * factor).astype(np.float32), scale.name)
        scale.CopyFrom(scaled)
        onnx.save(proto, str(run_dir / path))
        resign(run_dir, path)
        return
    raise AssertionError(f"no INT8 weight of {module} in {path}")
