"""Post-training pruning with weight reconstruction (OBS / SparseGPT-style), for float and INT8 weights.

For each prunable layer, in forward order, the calibration images flow through
the already-compressed layers before it and the layer's input Hessian
``H = 2 X Xᵀ / n`` is accumulated batch by batch (conv inputs unfolded to
columns; the unfolded inputs of one batch are the only ones ever in memory).
Then the weights to remove are chosen by the OBS saliency ``w² / [H⁻¹]ₚₚ`` and
every kept weight of the row is updated to compensate, column block by column
block (Frantar & Alistarh, SparseGPT 2023; Optimal Brain Compression 2022).

INT8 weights are pruned *inside the INT8 grid* (OBC's joint pruning and
quantization): pruned integers go to the zero point, and kept weights take the
compensation and are re-rounded on their own per-channel scale; scales, zero
points and the format stay as they were.

The reference code read before writing this: IST-DASLab/sparsegpt
``sparsegpt.py`` (``add_batch``, ``fasterprune``) and IST-DASLab/OBC
``trueobs.py`` (conv unfolding, double-precision accumulation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from exporter.compress import magnitude
from exporter.errors import BadInputError

BLOCK = 128  # columns processed together (SparseGPT's lazy batch updates)
REL_DAMP = 0.01  # damping, relative to the mean of diag(H)
MAX_DAMP_RETRIES = 6  # each retry multiplies the damping by 10
CAP = 0.95  # no layer loses more than this fraction of its weights when sparsity is allocated globally
MAX_H_COLUMNS = 8192  # wider layers get a block-diagonal Hessian (see _layout)


class _Captured(Exception):
    """Raised by a hook once it has the input it needs: the rest of the forward pass is not run."""


@dataclass
class LayerResult:
    name: str
    sparsity: float  # the target for this layer
    damp: float  # the damping actually used (relative), larger when Cholesky needed more
    dead_inputs: int  # input columns that were always zero
    loss: float  # the OBS estimate of the added squared output error


@dataclass
class ReconstructionReport:
    method: str = "obs"
    images: int = 0
    layers: list[LayerResult] = field(default_factory=list)
    seconds: float = 0.0
    reused: int = 0  # leading layers taken from an earlier identical reconstruction
    # name -> (weight before, weight after): what a later model with the same leading layers can reuse
    results: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def notes(self) -> list[str]:
        raised = [r for r in self.layers if r.damp > REL_DAMP]
        return [f"{r.name}: Cholesky of H needed damping {r.damp:g} (relative) instead of {REL_DAMP:g}"
                for r in raised]


class HessianAccumulator:
    """``H = 2 X Xᵀ / n`` of one layer's input, accumulated batch by batch (n counts input columns).

    A grouped convolution (depthwise: one group per channel) has one H per group, since each output
    channel sees only its group's inputs: ``H`` is (groups, d, d) with d the inputs of one group
    (1 group for a dense conv or a Linear).

    ``keep`` < 1 samples that fraction of the columns of each batch (seeded, uniform): an early
    convolution sees hundreds of thousands of columns for a few hundred rows of H, far more than
    its estimate needs; the columns kept are an unbiased sample of them.
    """

    SAMPLES_PER_ROW = 64  # columns kept per row of H, at most (see keep_fraction)

    def __init__(self, module: nn.Module, columns: int, keep: float = 1.0, seed: int = 0) -> None:
        self.module = module
        self.parts = math.prod(_layout(module))  # groups, or column blocks of a very wide layer
        self.conv = hasattr(module, "kernel_size")
        self.sum = torch.zeros((self.parts, columns, columns), dtype=torch.float32)
        self.n = 0
        self.keep = keep
        self.gen = torch.Generator().manual_seed(seed)

    def columns_of(self, inp: torch.Tensor, keep: float = 1.0) -> torch.Tensor:
        """The input as (groups, rows of H, columns): unfolded for a convolution (one column per output
        position), ``keep`` of the positions of each image sampled (the same ones for every image)."""
        x = inp.detach()
        if x.is_quantized:
            x = x.dequantize()
        x = x.float()
        if self.conv:  # a Linear may take 4-D inputs too (ConvNeXt's channels-last MLP): by the module, not the shape
            m = self.module
            x = nn.functional.unfold(x, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
            if keep < 1.0:
                k = max(1, int(round(keep * x.shape[2])))
                x = x[:, :, torch.randperm(x.shape[2], generator=self.gen)[:k]]
            # unfold orders rows channel-major, so each group's inputs are one contiguous block of rows
            n, rows, positions = x.shape
            x = x.reshape(n, self.parts, rows // self.parts, positions)
            return x.permute(1, 2, 0, 3).reshape(self.parts, rows // self.parts, n * positions)
        x = x.reshape(-1, x.shape[-1]).t()
        return x.reshape(self.parts, x.shape[0] // self.parts, x.shape[1])

    def per_image(self, inp: torch.Tensor) -> int:
        """Columns one image gives (output positions of a convolution, tokens of a Linear)."""
        return self.columns_of(inp[:1]).shape[-1]

    def add(self, inp: torch.Tensor) -> None:
        x = self.columns_of(inp, self.keep)
        self.sum.baddbmm_(x, x.transpose(1, 2))
        self.n += x.shape[-1]

    @property
    def H(self) -> torch.Tensor:
        """(parts, d, d), float64: one H per group, or per column block."""
        return self.sum.double() * (2.0 / max(self.n, 1))

    @classmethod
    def keep_fraction(cls, rows: int, total_columns: int) -> float:
        return min(1.0, cls.SAMPLES_PER_ROW * rows / max(total_columns, 1))


def _groups(module: nn.Module) -> int:
    return int(getattr(module, "groups", 1) or 1)


def _layout(module: nn.Module) -> tuple[int, int]:
    """(groups, column blocks) OBS splits a layer's weight matrix into.

    A grouped convolution has one H per group (exact). A layer with more than MAX_H_COLUMNS inputs gets a
    block-diagonal H, contiguous blocks of its inputs treated as independent (an approximation: no
    compensation across blocks): VGG's first classifier layer has 25088 inputs, whose full H alone would
    take 2.5 GB and a 25088² Cholesky; as 7 blocks of 3584 it takes 360 MB.
    """
    groups = _groups(module)
    if groups > 1:
        return groups, 1
    w = module.weight() if callable(module.weight) else module.weight
    columns = int(w[0].numel())
    blocks = math.ceil(columns / MAX_H_COLUMNS)
    while columns % blocks:
        blocks += 1
    return 1, blocks


def _weight_matrix(pw: magnitude.PrunableWeight) -> torch.Tensor:
    """The weight as (parts, rows per part, columns per part) float32 (see :func:`_layout`); dequantized
    for INT8."""
    w = pw.module.weight().dequantize() if pw.kind == "int8" else pw.module.weight.detach()
    groups, blocks = _layout(pw.module)
    w = w.float().reshape(w.shape[0], -1)
    if blocks > 1:  # every output row sees every block: (blocks, rows, columns per block)
        return w.reshape(w.shape[0], blocks, -1).permute(1, 0, 2).contiguous()
    return w.reshape(groups, w.shape[0] // groups, -1).clone()


def _columns(pw: magnitude.PrunableWeight) -> int:
    """Inputs one output sees in one part: rows of that part's H."""
    w = pw.module.weight() if pw.kind == "int8" else pw.module.weight
    return int(w[0].numel()) // _layout(pw.module)[1]


def _inverse_cholesky(H: torch.Tensor, rel_damp: float) -> tuple[torch.Tensor, float]:
    """The upper Cholesky factor of H⁻¹ (SparseGPT's Hinv) of each group's H (groups, d, d), raising the
    damping until every H is positive definite."""
    mean_diag = torch.diagonal(H, dim1=-2, dim2=-1).mean(-1).reshape(-1, 1, 1)
    damp = rel_damp
    eye = torch.eye(H.shape[-1], dtype=H.dtype).expand_as(H)
    for _ in range(MAX_DAMP_RETRIES + 1):
        try:
            L = torch.linalg.cholesky(H + eye * (damp * mean_diag))
            Hinv = torch.cholesky_inverse(L)
            return torch.linalg.cholesky(Hinv, upper=True), damp
        except RuntimeError:  # torch.linalg.LinAlgError: not positive definite
            damp *= 10.0
    raise RuntimeError(f"H is not positive definite even with damping {damp:g}")


class _Grid:
    """Symmetric per-row INT8 grid of a quantized weight: kept weights are re-rounded onto it."""

    def __init__(self, qweight: torch.Tensor, groups: int = 1) -> None:
        """``groups``: the weight matrix's groups (column blocks share every row's scale: pass 1)."""
        rows = qweight.shape[0]
        self.scale = qweight.q_per_channel_scales().float().reshape(groups, rows // groups)
        self.zero = qweight.q_per_channel_zero_points().float().reshape(groups, rows // groups)
        info = torch.iinfo(torch.int8)
        self.qmin, self.qmax = info.min, info.max

    def round(self, w: torch.Tensor) -> torch.Tensor:
        """``w``: (groups, rows per group), one column."""
        q = torch.clamp(torch.round(w / self.scale) + self.zero, self.qmin, self.qmax)
        return (q - self.zero) * self.scale


def obs_prune_matrix(W: torch.Tensor, H: torch.Tensor, sparsity: float, grid: _Grid | None = None,
                     rel_damp: float = REL_DAMP, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor, float, int, float]:
    """SparseGPT on one weight: (new weights, keep mask, damping used, dead inputs, loss).

    ``W`` is (rows, columns) with ``H`` (columns, columns), or, for a grouped convolution, (groups, rows,
    columns) with one H per group (groups, columns, columns); the weights to remove are chosen over the
    whole layer, every group at once. ``grid``: kept weights are rounded onto it (INT8), pruned ones are
    exactly 0 (the zero point).
    """
    flat = W.dim() == 2
    # float32 like SparseGPT (the damping keeps it well conditioned); H was accumulated in float64.
    W = (W.unsqueeze(0) if flat else W).float().clone()
    H = (H.unsqueeze(0) if H.dim() == 2 else H).float().clone()
    # An input that is always zero contributes nothing: its weights are the cheapest to prune (saliency 0),
    # and they count towards the target like any other, so the achieved sparsity is the requested one.
    diag = torch.diagonal(H, dim1=-2, dim2=-1)
    dead = diag == 0
    diag[dead] = 1.0
    Hinv, damp = _inverse_cholesky(H, rel_damp)
    groups, rows, cols = W.shape
    keep = torch.ones_like(W, dtype=torch.bool)
    loss = 0.0
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, :, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[:, i1:i2, i1:i2]
        d = torch.diagonal(Hinv1, dim1=-2, dim2=-1)  # (groups, block)
        saliency = W1 ** 2 / d.unsqueeze(1) ** 2
        saliency.masked_fill_(dead[:, i1:i2].unsqueeze(1).expand_as(saliency), 0.0)
        k = int(saliency.numel() * sparsity)
        mask1 = torch.zeros_like(W1, dtype=torch.bool)  # True = pruned
        if k > 0:
            mask1.view(-1)[torch.topk(saliency.flatten(), k, largest=False).indices] = True
        for i in range(i2 - i1):
            w = W1[:, :, i]
            q = torch.where(mask1[:, :, i], torch.zeros_like(w), w)
            if grid is not None:
                q = torch.where(mask1[:, :, i], q, grid.round(q))
            Q1[:, :, i] = q
            err = (w - q) / d[:, i:i + 1]
            loss += float(torch.sum(err ** 2)) / 2
            W1[:, :, i:] -= err.unsqueeze(2) @ Hinv1[:, i:i + 1, i:]
            Err1[:, :, i] = err
        W[:, :, i1:i2] = Q1
        keep[:, :, i1:i2] = ~mask1
        W[:, :, i2:] -= Err1 @ Hinv[:, i1:i2, i2:]
    if flat:
        W, keep = W[0], keep[0]
    return W.float(), keep, damp, int(dead.sum()), loss


def _stored(pw: magnitude.PrunableWeight) -> torch.Tensor:
    """The weight as stored (a quantized tensor for INT8), detached and copied."""
    return pw.module.weight().clone() if pw.kind == "int8" else pw.module.weight.detach().clone()


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.is_quantized != b.is_quantized or a.shape != b.shape:
        return False
    if a.is_quantized:
        return (torch.equal(a.int_repr(), b.int_repr()) and torch.equal(a.q_per_channel_scales(), b.q_per_channel_scales())
                and torch.equal(a.q_per_channel_zero_points(), b.q_per_channel_zero_points()))
    return torch.equal(a, b)


def _restore(pw: magnitude.PrunableWeight, w: torch.Tensor) -> None:
    if pw.kind == "int8":
        pw.module.set_weight_bias(w.clone(), pw.module.bias())
    else:
        with torch.no_grad():
            pw.module.weight.copy_(w)


def _write(pw: magnitude.PrunableWeight, W: torch.Tensor, keep: torch.Tensor) -> None:
    """Store reconstructed weights: float in place; INT8 as integers on the unchanged scales."""
    if _layout(pw.module)[1] > 1:  # column blocks back side by side
        W, keep = W.permute(1, 0, 2).reshape(W.shape[1], -1), keep.permute(1, 0, 2).reshape(keep.shape[1], -1)
    W, keep = W.reshape(-1, W.shape[-1]), keep.reshape(-1, keep.shape[-1])  # (output channels, columns)
    if pw.kind == "int8":
        qw = pw.module.weight()
        scales, zps, axis = qw.q_per_channel_scales(), qw.q_per_channel_zero_points(), qw.q_per_channel_axis()
        shape = qw.shape
        ints = torch.round(W.double() / scales.double().reshape(-1, 1)) + zps.double().reshape(-1, 1)
        ints = torch.clamp(ints, -128, 127)
        ints = torch.where(keep, ints, zps.double().reshape(-1, 1).expand_as(ints))
        new = torch._make_per_channel_quantized_tensor(ints.to(torch.int8).reshape(shape).contiguous(),
                                                       scales, zps, axis)
        pw.module.set_weight_bias(new, pw.module.bias())
    else:
        p = pw.module.weight
        with torch.no_grad():
            p.copy_(torch.where(keep, W, torch.zeros_like(W)).reshape(p.shape).to(p.dtype))


def _accumulate(model: nn.Module, targets: Sequence[magnitude.PrunableWeight], images: torch.Tensor,
                batch: int, stop_after_last: bool) -> list[HessianAccumulator]:
    """Run the images through ``model`` and accumulate the Hessian of each target layer's input."""
    accs = [HessianAccumulator(t.module, _columns(t)) for t in targets]
    remaining = {id(a) for a in accs}
    handles = []
    last = targets[-1].module

    def hook_for(acc: HessianAccumulator):
        def hook(module, args):
            acc.add(args[0])
            if stop_after_last and module is last:
                raise _Captured

        return hook

    for acc in accs:
        handles.append(acc.module.register_forward_pre_hook(hook_for(acc)))
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch):
                try:
                    model(images[i:i + batch])
                except _Captured:
                    pass
    finally:
        for h in handles:
            h.remove()
    del remaining
    return accs


class _Stream:
    """Runs a traced model node by node over every calibration image, keeping each value as chunks.

    Every node is computed once for all images, after every layer before it was compressed: a
    target layer's input is complete (all images) when its node is reached, so its Hessian is
    accumulated, the layer is pruned, and only then is the node run. Values are freed once their
    last user has run, so memory holds the live activations of the calibration set (one
    ResNet stage's worth), never every layer's.
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, chunk: int) -> None:
        import torch.fx as fx

        self.gm = fx.symbolic_trace(model)
        self.chunks = [images[i:i + chunk] for i in range(0, len(images), chunk)]

    def owner(self, weight: magnitude.PrunableWeight) -> str:
        """The call_module node whose module holds this weight (a fused module holds its conv)."""
        for node in self.gm.graph.nodes:
            if node.op == "call_module":
                mod = self.gm.get_submodule(node.target)
                if mod is weight.module or any(sub is weight.module for sub in mod.modules()):
                    return node.name
        raise RuntimeError(f"{weight.name} is not called in the traced graph")

    def run(self, before: Callable[[str, list[torch.Tensor]], None]) -> None:
        """Evaluate the graph; ``before(node_name, input_chunks)`` runs before each call_module node."""
        from torch.fx.node import map_arg

        nodes = list(self.gm.graph.nodes)
        last_use = {}
        for i, node in enumerate(nodes):
            for arg in node.all_input_nodes:
                last_use[arg] = i
        env: dict = {}
        n = len(self.chunks)
        for i, node in enumerate(nodes):
            if node.op == "placeholder":
                env[node] = list(self.chunks)
                continue
            if node.op == "output":
                break

            def pick(k: int):
                return map_arg(node.args, lambda a: env[a][k]), map_arg(node.kwargs, lambda a: env[a][k])

            if node.op == "get_attr":
                value = self.gm
                for part in node.target.split("."):
                    value = getattr(value, part)
                env[node] = [value] * n
            else:
                if node.op == "call_module":
                    first = node.args[0] if node.args else None
                    before(node.name, env[first] if isinstance(first, type(node)) else [])
                outs = []
                with torch.no_grad():
                    for k in range(n):
                        args, kwargs = pick(k)
                        if node.op == "call_module":
                            outs.append(self.gm.get_submodule(node.target)(*args, **kwargs))
                        elif node.op == "call_function":
                            outs.append(node.target(*args, **kwargs))
                        else:  # call_method
                            outs.append(getattr(args[0], node.target)(*args[1:], **kwargs))
                env[node] = outs
            for arg in node.all_input_nodes:
                if last_use.get(arg) == i:
                    del env[arg]


def allocate(model: nn.Module, weights: Sequence[magnitude.PrunableWeight], images: torch.Tensor, sparsity: float,
             batch: int, cap: float = CAP) -> list[float]:
    """Per-layer sparsities for one global budget, ranked by OBS loss relative to each layer's output energy.

    One pass over the uncompressed model gives every layer's H. A weight's cost is its OBS saliency
    ``w² / [H⁻¹]ₚₚ`` divided by the layer's output energy ``tr(W H Wᵀ)``: the share of that layer's signal
    it removes, comparable across layers whatever their scale. The cheapest weights go first, no layer
    beyond ``cap``, so none is ever emptied.
    """
    costs = [torch.empty(0)] * len(weights)

    def cost(i: int, hessian: Callable[[], torch.Tensor]) -> None:
        W = _weight_matrix(weights[i])  # (groups, rows, d)
        H = hessian().float()  # (groups, d, d)
        diag = torch.diagonal(H, dim1=-2, dim2=-1)
        dead = diag == 0
        diag[dead] = 1.0
        damp = REL_DAMP * diag.mean(-1).reshape(-1, 1, 1)
        Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H + torch.eye(H.shape[-1]) * damp))
        energy = float(torch.sum((W @ H) * W)) or 1.0
        sal = (W ** 2 / torch.diagonal(Hinv, dim1=-2, dim2=-1).unsqueeze(1)) / energy
        sal.masked_fill_(dead.unsqueeze(1).expand_as(sal), 0.0)
        costs[i] = sal.flatten()

    _visit(model, weights, images, batch, cost)
    sizes = [c.numel() for c in costs]
    budget = int(round(sparsity * sum(sizes)))
    if budget == 0:
        return [0.0] * len(sizes)
    # The cheapest weights first, no layer beyond its cap: the budget smallest among every layer's
    # cap-many cheapest weights (what a greedy pass skipping full layers would take).
    candidates = [torch.sort(c).values[:int(cap * c.numel())] for c in costs]
    pool = torch.cat(candidates)
    budget = min(budget, pool.numel())
    threshold = torch.kthvalue(pool, budget).values
    taken = [int((c < threshold).sum()) for c in candidates]
    ties = [int((c == threshold).sum()) for c in candidates]
    short = budget - sum(taken)
    for i, t in enumerate(ties):  # weights exactly at the threshold, in layer order, until the budget is met
        extra = min(t, short)
        taken[i] += extra
        short -= extra
    return [t / n for t, n in zip(taken, sizes)]


def _visit(model: nn.Module, weights: Sequence[magnitude.PrunableWeight], images: torch.Tensor, batch: int,
           at: Callable[[int, Callable[[], torch.Tensor]], None]) -> None:
    """Call ``at(i, hessian)`` for every weight in forward order; ``hessian()`` gives H of its input as it
    is at that point (so ``at`` may modify weight ``i`` and every later layer sees the change).

    One pass of a traced graph (every node once); a model FX cannot trace falls back to one pass per
    layer, stopped as soon as the layer's input is captured.
    """
    try:
        stream = _Stream(model, images, batch)
        owners = {stream.owner(w): i for i, w in enumerate(weights)}
    except Exception:  # noqa: BLE001 - any tracing failure: the slower per-layer passes still work
        stream = None
    if stream is None or len(owners) != len(weights):
        for i, w in enumerate(weights):
            at(i, lambda w=w: _accumulate(model, [w], images, batch, stop_after_last=True)[0].H)
        return

    def before(node: str, chunks: list[torch.Tensor]) -> None:
        i = owners.get(node)
        if i is None:
            return

        def hessian() -> torch.Tensor:
            rows = _columns(weights[i])
            acc = HessianAccumulator(weights[i].module, rows)
            total = acc.per_image(chunks[0]) * sum(len(x) for x in chunks)
            acc.keep = HessianAccumulator.keep_fraction(rows, total)
            for x in chunks:
                acc.add(x)
            return acc.H

        at(i, hessian)

    stream.run(before)


def layer_targets(model: nn.Module, images: torch.Tensor, sparsity: float, scope: str,
                  batch: int = 16) -> dict[str, float]:
    """Each prunable layer's sparsity (by name): uniform for ``layer``, allocated by OBS loss for ``global``."""
    weights = magnitude.prunable_weights(model)
    if scope == "global":
        return dict(zip((w.name for w in weights), allocate(model, weights, images, sparsity, batch)))
    if scope == "layer":
        return {w.name: sparsity for w in weights}
    raise BadInputError(f"unknown pruning scope {scope!r}; known: global, layer")


def reconstruct(model: nn.Module, images: torch.Tensor, sparsity: float, scope: str = "layer", batch: int = 16,
                say: Callable[[str], None] = lambda m: None,
                progress: Callable[[int, int, str], None] | None = None,
                targets: dict[str, float] | None = None,
                known: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> ReconstructionReport:
    """Prune ``model`` in place at ``sparsity`` with OBS reconstruction, layer by layer in forward order.

    ``targets`` (layer name → sparsity, from :func:`layer_targets`) lets variants of one model share
    one global allocation (the INT8 and mixed models are pruned where their float model was chosen to be).
    ``known`` (an earlier report's ``results``, with the same images and targets) is reused for the leading
    layers whose weights are identical to that earlier model's: their inputs are then identical too, so
    their reconstruction would be (the ``mixed`` model shares the ``int8`` model's body this way).
    """
    import time

    t0 = time.perf_counter()
    report = ReconstructionReport(images=int(len(images)))
    magnitude.check_sparsity(sparsity)
    weights = magnitude.prunable_weights(model)
    if sparsity == 0.0 or not weights:
        return report
    model.eval()
    by_name = targets if targets is not None else layer_targets(model, images, sparsity, scope, batch)
    missing = [w.name for w in weights if w.name not in by_name]
    if missing:
        raise RuntimeError(f"no sparsity target for layer(s) {', '.join(missing)}")
    targets = [by_name[w.name] for w in weights]

    reusing = [known is not None]

    def prune_layer(i: int, hessian: Callable[[], torch.Tensor]) -> None:
        pw, target = weights[i], targets[i]
        if progress is not None:
            progress(i, len(weights), pw.name)
        if target == 0.0:  # nothing to prune in this layer (a sensitivity row prunes one layer only)
            return
        before = _stored(pw)
        if reusing[0] and pw.name in known and _same(known[pw.name][0], before):
            _restore(pw, known[pw.name][1])
            report.results[pw.name] = known[pw.name]
            report.reused += 1
            return
        reusing[0] = False
        grid = _Grid(pw.module.weight(), _groups(pw.module)) if pw.kind == "int8" else None
        W, keep, damp, dead, loss = obs_prune_matrix(_weight_matrix(pw), hessian(), target, grid)
        if not torch.isfinite(W).all():
            raise RuntimeError(f"OBS reconstruction of {pw.name} produced non-finite weights")
        _write(pw, W, keep)
        report.results[pw.name] = (before, _stored(pw))
        report.layers.append(LayerResult(pw.name, float(target), damp, dead, loss))

    _visit(model, weights, images, batch, prune_layer)
    if progress is not None:
        progress(len(weights), len(weights), "")
    report.seconds = time.perf_counter() - t0
    say(f"obs: {len(weights)} layers reconstructed from {len(images)} images in {report.seconds:.1f} s")
    return report

