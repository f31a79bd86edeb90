"""Label-free reconstruction of a channel-pruned model: each layer refit by least squares.

He, Zhang & Sun, "Channel Pruning for Accelerating Very Deep Neural Networks"
(ICCV 2017): once a layer has lost input channels, its weights are refit so
that its outputs, computed from what the slim network now feeds it, match the
unpruned network's outputs on the calibration images. Layers are refit in
forward order, each from the inputs the already-refit layers before it produce,
so errors do not accumulate.

The targets are the unpruned layer's outputs *as normalised*: when BatchNorm
statistics were re-estimated first, each target channel is mapped through the
teacher's and the student's statistics, so the refit output normalises to what
the teacher's does.

Per layer, ``A = XᵀX`` and ``B = XᵀY`` are accumulated batch by batch (conv
inputs unfolded to columns, a seeded sample of output positions kept for large
feature maps), then ``W = W₀ + (A + λI)⁻¹ (B − A W₀)``: a ridge toward the
pruned weights, so a layer with more unknowns than samples stays where it was
rather than overfitting. The fit has an intercept; it goes into the layer's
bias, or into the following BatchNorm's running mean (a shift before
normalisation is exactly a change of that mean).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from exporter.compress.channels import ChannelPlan

SAMPLES_PER_COLUMN = 32  # output positions kept per unknown of the fit, at most
RIDGE = 1e-3  # λ, relative to the mean of diag(A)


class _Stop(Exception):
    """Raised by a hook once it has what it needs: the rest of the forward pass is not run."""


@dataclass(frozen=True)
class RefitLayer:
    name: str
    inputs: int  # input channels the layer has now
    before: float  # relative squared output error before the refit (on the calibration images)
    after: float  # and after


def refittable(student: nn.Module, teacher: nn.Module) -> list[str]:
    """Layers (forward order) whose inputs were pruned: convolutions and Linears with fewer inputs."""
    t = dict(teacher.named_modules())
    out = []
    for name, m in student.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)) or name not in t:
            continue
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            continue  # a grouped conv's inputs are its own outputs: nothing to solve across channels
        if m.weight.shape[1] != t[name].weight.shape[1]:
            out.append(name)
    return out


def following_batchnorm(model: nn.Module, name: str) -> nn.modules.batchnorm._BatchNorm | None:
    """The BatchNorm that normalises ``name``'s output: the next layer in module order, when it is a
    BatchNorm of the same width (torchvision's conv→bn pairs: ``conv1``/``bn1``, ``downsample.0``/``.1``)."""
    seen = False
    for n, m in model.named_modules():
        if n == name:
            seen = True
            continue
        if seen and isinstance(m, (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            width = model.get_submodule(name).weight.shape[0]
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.num_features == width:
                return m
            return None
    return None


def _capture(model: nn.Module, name: str, x: torch.Tensor, output: bool) -> torch.Tensor:
    """The input (or output) of layer ``name`` when ``model`` runs on ``x``, stopping right there."""
    module = model.get_submodule(name)
    got: list[torch.Tensor] = []

    def pre(mod, args):
        got.append(args[0].detach())
        raise _Stop

    def post(mod, args, out):
        got.append(out.detach())
        raise _Stop

    handle = module.register_forward_hook(post) if output else module.register_forward_pre_hook(pre)
    try:
        with torch.no_grad():
            model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    return got[0]


def _rows(module: nn.Module, x: torch.Tensor, pick: torch.Tensor | None) -> torch.Tensor:
    """The layer's input as (samples, unknowns): one row per kept output position of each image."""
    if isinstance(module, nn.Conv2d):
        cols = nn.functional.unfold(x, module.kernel_size, dilation=module.dilation,
                                    padding=module.padding, stride=module.stride)  # N, C·k², L
        if pick is not None:
            cols = cols[:, :, pick]
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


def _targets(y: torch.Tensor, kept: torch.Tensor, pick: torch.Tensor | None, conv: bool) -> torch.Tensor:
    """The teacher's outputs of the kept channels as (samples, channels), positions as in :func:`_rows`.
    A conv's channels are dimension 1; a Linear's the last (ConvNeXt runs its Linears channels-last)."""
    if not conv:
        return y[..., kept].reshape(-1, len(kept))
    y = y[:, kept]
    if y.dim() == 4:
        y = y.flatten(2)
        if pick is not None:
            y = y[:, :, pick]
        return y.transpose(1, 2).reshape(-1, y.shape[1])
    return y


def refit_layer(student: nn.Module, teacher: nn.Module, name: str, kept: torch.Tensor,
                images: torch.Tensor, batch: int = 16, seed: int = 0) -> RefitLayer:
    """Refit layer ``name`` of ``student`` so its kept outputs match ``teacher``'s on ``images``."""
    module = student.get_submodule(name)
    # The intercept needs somewhere to go: the layer's bias or the BatchNorm after it.
    intercept = module.bias is not None or following_batchnorm(student, name) is not None
    W0 = module.weight.detach().reshape(module.weight.shape[0], -1).double()
    if intercept:
        bias = module.bias.detach().double() if module.bias is not None else torch.zeros(len(W0), dtype=torch.float64)
        W0 = torch.cat([W0, bias.reshape(-1, 1)], 1)
    W0 = W0.t()  # (unknowns, outputs)
    n_in = W0.shape[0]
    A = torch.zeros(n_in, n_in, dtype=torch.float64)
    B = torch.zeros(n_in, W0.shape[1], dtype=torch.float64)
    energy = 0.0
    gen = torch.Generator().manual_seed(seed)
    pick, picked = None, False
    to_student = _normalisation_map(student, teacher, name, kept)
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        xs = _capture(student, name, x, output=False).float()
        yt = _capture(teacher, name, x, output=True).float()
        if isinstance(module, nn.Conv2d) and not picked:
            positions = yt.shape[2] * yt.shape[3]
            keep = max(1, SAMPLES_PER_COLUMN * n_in // len(images))
            pick = torch.randperm(positions, generator=gen)[:keep].sort().values if keep < positions else None
            picked = True
        X = _rows(module, xs, pick).double()
        if intercept:
            X = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
        Y = to_student(_targets(yt, kept, pick, isinstance(module, nn.Conv2d)).double())
        A.addmm_(X.t(), X)
        B.addmm_(X.t(), Y)
        energy += float((Y ** 2).sum())
    damp = RIDGE * float(torch.diag(A).mean()) or RIDGE
    W = W0 + torch.linalg.solve(A + damp * torch.eye(n_in, dtype=A.dtype), B - A @ W0)
    before, after = _relative_error(A, B, energy, W0), _relative_error(A, B, energy, W)
    _write(student, name, module, W.t(), intercept)
    return RefitLayer(name, int(module.weight.shape[1]), before, after)


def _normalisation_map(student: nn.Module, teacher: nn.Module, name: str, kept: torch.Tensor):
    """Teacher pre-BatchNorm outputs → the student pre-BatchNorm outputs that give the same *normalised*
    outputs under the student's own (re-estimated) statistics. γ and β are the teacher's (pruning only
    selects them), so per channel ``y_s = σ_s/σ_t (y_t − μ_t) + μ_s``; identity when the statistics agree."""
    bn_s, bn_t = following_batchnorm(student, name), following_batchnorm(teacher, name)
    if bn_s is None or bn_t is None:
        return lambda y: y
    mu_t, var_t = bn_t.running_mean[kept].double(), bn_t.running_var[kept].double()
    mu_s, var_s = bn_s.running_mean.double(), bn_s.running_var.double()
    scale = torch.sqrt(var_s + bn_s.eps) / torch.sqrt(var_t + bn_t.eps)
    return lambda y: (y - mu_t) * scale + mu_s


def _write(model: nn.Module, name: str, module: nn.Module, W: torch.Tensor, intercept: bool) -> None:
    weight = W[:, :-1] if intercept else W
    with torch.no_grad():
        module.weight.copy_(weight.reshape(module.weight.shape).to(module.weight.dtype))
        if not intercept:
            return
        c = W[:, -1]
        if module.bias is not None:
            module.bias.copy_(c.to(module.bias.dtype))
        else:
            # BN((y + c) − μ) = BN(y − (μ − c)): the intercept moves the running mean.
            bn = following_batchnorm(model, name)
            bn.running_mean.sub_(c.to(bn.running_mean.dtype))


def _relative_error(A: torch.Tensor, B: torch.Tensor, energy: float, W: torch.Tensor) -> float:
    """‖XW − Y‖² / ‖Y‖² from the accumulated statistics (A = XᵀX, B = XᵀY, energy = ‖Y‖²)."""
    residual = float(torch.sum(W * (A @ W)) - 2 * torch.sum(W * B)) + energy
    return max(residual, 0.0) / (energy or 1.0)


def refit(student: nn.Module, teacher: nn.Module, plan: ChannelPlan, images: torch.Tensor,
          batch: int = 16) -> tuple[list[RefitLayer], float]:
    """Refit every layer of ``student`` whose inputs were pruned, in forward order; (layers, seconds)."""
    t0 = time.perf_counter()
    student.eval()
    teacher.eval()
    done = []
    for name in refittable(student, teacher):
        total = teacher.get_submodule(name).weight.shape[0]
        done.append(refit_layer(student, teacher, name, plan.kept_of(name, total), images, batch))
    return done, time.perf_counter() - t0
