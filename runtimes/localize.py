"""Where does an artifact start to drift? Layer-by-layer parity against its eager model.

For an artifact whose runtime exposes intermediate activations (the
:class:`~runtimes.protocol.LayerOutputs` capability: ONNX in ONNX Runtime), every
module of the eager reference is hooked (``register_forward_hook``), both run on the
same inputs, and each module's output is compared with the tensor the runtime maps
to it: SQNR, cosine and max abs error (:mod:`runtimes.metrics`, each input's
activation a row). A layer passes when it meets the artifact's own cosine and SQNR
tolerance (the scale-free ones; the max-abs and top-1 rows are about logits). The
first divergent layer is the first one, in the eager model's execution order, that
does not.

Rules that keep the comparison honest:

* quantized eager outputs (INT8 modules return quantized tensors) are dequantized;
  quantized runtime tensors are dequantized with their graph's own scale and zero point;
* a module called more than once per forward (a shared ReLU) has no single output: skipped;
* a float export folds BatchNorm into the convolution before it: when the eager module
  executed right after a mapped one is a BatchNorm that the graph no longer has, the
  mapped tensor is compared with the BatchNorm's output, and the row says so (``folded``);
* at most :data:`LOCALIZE_INPUTS` inputs are used, which bounds the memory held.

TorchScript artifacts are traced and frozen: no module boundaries remain, so they
cannot be localized (their runtime's ``no_layer_outputs`` says so).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from runtimes import metrics, registry
from runtimes.errors import BadInputError, RuntimeUnavailable
from runtimes.manifest import ArtifactRecord, Format, Manifest, require_verified
from runtimes.parity import BATCH, DEFAULT_TOLERANCES, LayerParity, ParityResult, Tolerance, tolerance_row
from runtimes.protocol import LayerOutputs, layer_outputs_support

LOCALIZE_INPUTS = 8
WHICH = ("violating", "all")


@dataclass(frozen=True)
class Localization:
    first_divergent_layer: str | None
    layers: list[LayerParity] = field(default_factory=list)
    summary: str = ""


def _rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).reshape(len(x), -1)


def layer_parity(layer: str, tensor: str, reference: np.ndarray, test: np.ndarray, tol: Tolerance,
                 folded: Sequence[str] = ()) -> LayerParity:
    """One layer's metrics (each input's activation is a row) and whether it meets the tolerance."""
    ref, out = _rows(reference), _rows(test)
    cos, sqnr = metrics.cosine_similarity(ref, out), metrics.sqnr_db(ref, out)
    ok = ((tol.min_cosine is None or cos >= tol.min_cosine)
          and (tol.min_sqnr_db is None or sqnr >= tol.min_sqnr_db) and bool(np.all(np.isfinite(out))))
    return LayerParity(layer=layer, tensor=tensor, sqnr_db=sqnr, cosine=cos,
                       max_abs_error=metrics.max_abs_error(ref, out), passed=ok, folded=list(folded))


def eager_activations(module, inputs: np.ndarray) -> tuple[list[str], dict[str, np.ndarray], dict[str, type]]:
    """Every submodule's output, in execution order, as float32 (quantized outputs dequantized).

    Returns (order, outputs, module types); modules called more than once per forward, or whose
    output is not one tensor, are left out.
    """
    import torch

    calls: dict[str, int] = {}
    order: list[str] = []
    seen: dict[str, list[np.ndarray]] = {}
    types = {name: type(m) for name, m in module.named_modules() if name}

    def hook(name: str):
        def record(_mod, _inp, out) -> None:
            calls[name] = calls.get(name, 0) + 1
            if not isinstance(out, torch.Tensor):
                return
            value = out.dequantize() if out.is_quantized else out
            seen.setdefault(name, []).append(value.detach().float().cpu().numpy())
            if name not in order:
                order.append(name)
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in module.named_modules() if name]
    batches = 0
    try:
        with torch.inference_mode():
            for i in range(0, len(inputs), BATCH):
                module(torch.from_numpy(np.ascontiguousarray(inputs[i:i + BATCH])))
                batches += 1
    finally:
        for h in handles:
            h.remove()
    once = [n for n in order if calls.get(n) == batches and len(seen[n]) == batches]
    return once, {n: np.concatenate(seen[n]) for n in once}, types


def _is_batchnorm(cls: type) -> bool:
    from torch.nn.modules.batchnorm import _BatchNorm

    return issubclass(cls, _BatchNorm)


def _wrapper_prefix(order: Sequence[str]) -> str:
    """``"inner."`` when every module lives under one top-level wrapper, else ``""``."""
    tops = {n.split(".")[0] for n in order}
    if len(tops) == 1 and any("." in n for n in order):
        return f"{tops.pop()}."
    return ""


def localize_artifact(run_dir: Path, manifest: Manifest, art: ArtifactRecord, inputs: np.ndarray, tol: Tolerance,
                      threads: int | None = None, runtime: str | None = None) -> Localization:
    """Compare ``art`` with its eager reference layer by layer, in ``runtime`` (default: its format's reference
    runtime); raises RuntimeUnavailable when that runtime cannot expose intermediate activations."""
    spec = registry.reference_runtime(art.format) if runtime is None else registry.get_spec(runtime)
    rt = spec.create(threads)
    support = layer_outputs_support(rt)
    if not support.ok:
        raise RuntimeUnavailable(f"--localize cannot look inside {art.path} ({spec.name}): {support.reason}")
    assert isinstance(rt, LayerOutputs)
    x = np.ascontiguousarray(inputs[:LOCALIZE_INPUTS], dtype=np.float32)

    ref_spec = registry.reference_runtime(Format.EAGER)
    eager = ref_spec.create(threads)
    eager.load(run_dir, manifest.reference_for(art.reference_variant))
    try:
        order, reference, types = eager_activations(eager.module, x)  # type: ignore[attr-defined]
    finally:
        eager.close()

    # A wrapper module (FP16's ``inner``) is not in the exported graph's scopes: map without it.
    prefix = _wrapper_prefix(order)
    rt.load(run_dir, art)
    try:
        tensors = {prefix + m: t for m, t in rt.layer_tensors([n.removeprefix(prefix) for n in order]).items()}
        outputs: dict[str, list[np.ndarray]] = {}
        for i in range(0, len(x), BATCH):
            for name, value in rt.run_layers(x[i:i + BATCH]).items():
                outputs.setdefault(prefix + name, []).append(value)
    finally:
        rt.close()

    layers: list[LayerParity] = []
    order = [n for n in order if n + "." != prefix]
    for i, name in enumerate(order):
        if name not in tensors:
            continue
        ref, folded = reference[name], []
        nxt = order[i + 1] if i + 1 < len(order) else None
        if nxt is not None and nxt not in tensors and _is_batchnorm(types[nxt]) \
                and reference[nxt].shape == ref.shape:
            ref, folded = reference[nxt], [nxt]
        test = np.concatenate(outputs[name])
        if test.shape != ref.shape:
            continue  # e.g. a reshape inside the scope: not the module's output
        layers.append(layer_parity(name, tensors[name], ref, test, tol, folded))
    if not layers:
        return Localization(None, [], f"no node of {art.path} carries the scope of an eager module: "
                                       "nothing to compare layer by layer")
    first = next((lp.layer for lp in layers if not lp.passed), None)
    summary = (f"{len(layers)} layers compared in {spec.name} on {len(x)} inputs; "
               + (f"first outside the tolerance: {first}" if first else
                  "every layer within the tolerance (the drift accumulates, or is in the last op)"))
    return Localization(first, layers, summary)


def localize_results(run_dir: Path, results: Sequence[ParityResult], inputs: np.ndarray, which: str = "violating",
                     tolerances: dict[str, Tolerance] | None = None,
                     threads: int | None = None) -> list[ParityResult]:
    """``results`` with the violating ones (or all, ``which="all"``) localized.

    An artifact whose runtime cannot expose intermediates keeps the reason in ``localization``;
    when no targeted artifact can be localized, :class:`BadInputError` says why (exit 2).
    """
    if which not in WHICH:
        raise BadInputError(f"--localize takes {' or '.join(WHICH)}, got {which!r}")
    run_dir = Path(run_dir)
    manifest = require_verified(run_dir)
    table = tolerances if tolerances is not None else DEFAULT_TOLERANCES
    targets = [r for r in results if which == "all" or not r.passed]
    out, refused = [], []
    for r in results:
        if r not in targets:
            out.append(r)
            continue
        art = manifest.find(r.path)
        try:
            # in the runtime that result was computed in, by the row it was judged by (bf16 in OpenVINO)
            row = tolerance_row(art, r.peer, r.computed_in)
            loc = localize_artifact(run_dir, manifest, art, inputs, table[row], threads, r.runtime)
        except RuntimeUnavailable as exc:
            refused.append(str(exc))
            out.append(dataclasses.replace(r, localization=str(exc)))
            continue
        out.append(dataclasses.replace(r, first_divergent_layer=loc.first_divergent_layer, layers=loc.layers,
                                       localization=loc.summary))
    if targets and len(refused) == len(targets):
        raise BadInputError(refused[0] if len(refused) == 1 else
                            f"{refused[0]} (and {len(refused) - 1} more artifact(s) alike)")
    return out
