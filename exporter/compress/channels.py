"""Channel (structured) pruning: whole output channels removed, as small separate steps.

What is coupled comes from Torch-Pruning's dependency graph (a residual stream's
channels are removed together in every layer that adds into it; the classifier's
outputs are never touched). How to score is an importance criterion measured on
the calibration images (:func:`score_taylor`, or weight magnitude without real
images). How to cut is Torch-Pruning's pruner at one uniform fraction per layer,
rounded to a hardware-friendly multiple. What was cut is recorded by module name
(:class:`ChannelPlan`), so the reconstruction (:mod:`exporter.compress.refit`) knows which
of the original model's output channels each slim layer still computes, and the
eager runtime can rebuild the slim structure from the manifest alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from exporter.errors import BadInputError
from runtimes import structure

TAYLOR = "taylor"  # first-order Taylor (Molchanov et al. 2019) on the model's own predictions: label-free
MAGNITUDE = "l2-magnitude"  # weight norm of the coupled group: the fallback without real images
CRITERIA = (TAYLOR, MAGNITUDE)


@dataclass
class ChannelPlan:
    """What channel pruning kept: per layer, the original output channels it still computes."""

    criterion: str
    kept: dict[str, list[int]] = field(default_factory=dict)  # layer -> kept output channel indices
    original: dict[str, int] = field(default_factory=dict)  # layer -> output channels before

    def kept_of(self, name: str, total: int) -> torch.Tensor:
        """The kept output channel indices of ``name`` (all of them when it was not pruned)."""
        return torch.tensor(self.kept.get(name, range(total)), dtype=torch.long)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers whose output channels may be removed: every convolution and Linear but the classifier.

    Grouped (depthwise) convolutions are left to Torch-Pruning's coupling (their channels follow
    the layer feeding them), so they are not roots of their own.
    """
    classifier = structure.classifier_name(model)
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and n != classifier
            and not (isinstance(m, nn.Conv2d) and m.groups > 1)]


def score_taylor(model: nn.Module, images: torch.Tensor, batch: int = 32) -> None:
    """Accumulate the gradients Taylor importance reads, label-free: cross-entropy against the
    model's own predictions (a trained model's outputs are the only labels a calibration folder has)."""
    model.zero_grad(set_to_none=True)
    model.eval()  # BatchNorm statistics stay those of the trained model
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, logits.detach().argmax(1), reduction="sum") / len(images)
        loss.backward()


def importance(criterion: str):
    import torch_pruning as tp

    if criterion == TAYLOR:
        return tp.importance.GroupTaylorImportance()
    if criterion == MAGNITUDE:
        return tp.importance.GroupMagnitudeImportance(p=2)
    raise BadInputError(f"unknown channel importance {criterion!r}; known: {', '.join(CRITERIA)}")


def remove_channels(model: nn.Module, images: torch.Tensor, sparsity: float, round_to: int,
                    criterion: str) -> ChannelPlan:
    """Remove ``sparsity`` of every prunable layer's output channels from ``model`` in place (counts
    rounded to ``round_to``), scored by ``criterion`` on ``images``; returns what was kept."""
    import torch_pruning as tp

    model.eval()
    layers = prunable_layers(model)
    names = {id(m): n for n, m in model.named_modules()}
    plan = ChannelPlan(criterion, original={n: _outputs(m) for n, m in layers})
    if sparsity == 0.0:
        return plan
    example = images[:2]
    classifier = model.get_submodule(structure.classifier_name(model))
    scorer = importance(criterion)
    try:  # the pruner builds the dependency graph (once); a model it cannot trace is one line
        pruner = tp.pruner.BasePruner(
            model, example, importance=scorer, pruning_ratio=sparsity,
            ignored_layers=[classifier], round_to=round_to, global_pruning=False)
    except Exception as exc:  # noqa: BLE001 - any tracing failure becomes one line for the user
        raise BadInputError(f"channel pruning cannot trace {type(model).__name__}: {_first_line(exc)}") from exc
    if criterion == TAYLOR:
        score_taylor(model, images)  # gradients the Taylor scores read when the pruner steps
    removed: dict[str, set[int]] = {}
    for group in pruner.step(interactive=True):
        for dep, idxs in group:
            if dep.handler in (tp.prune_conv_out_channels, tp.prune_linear_out_channels):
                removed.setdefault(names[id(dep.target.module)], set()).update(int(i) for i in idxs)
        group.prune()
    model.zero_grad(set_to_none=True)
    check_forward(model, example)
    for n, total in plan.original.items():
        if n in removed:
            plan.kept[n] = [i for i in range(total) if i not in removed[n]]
    return plan


def check_forward(model: nn.Module, example: torch.Tensor) -> None:
    """Run the slim model once; when a layer Torch-Pruning could not follow breaks it (an op it does not
    trace, such as slicing channels by index), name that layer in one line."""
    entered: list[str] = []
    handles = [m.register_forward_pre_hook(lambda mod, args, n=n: entered.append(n))
               for n, m in model.named_modules() if n and not list(m.children())]
    try:
        with torch.no_grad():
            model(example)
    except Exception as exc:  # noqa: BLE001 - any failure here is the dependency graph's
        where = entered[-1] if entered else "the model's forward"
        raise BadInputError(f"channel pruning cannot trace {type(model).__name__}: after removing channels, "
                            f"the forward pass fails at or just after layer {where!r} ({_first_line(exc)})") from exc
    finally:
        for h in handles:
            h.remove()


def channel_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Every conv, Linear and BatchNorm's parameter shape (by name): what the eager runtime needs to
    rebuild the slim structure before loading its state_dict."""
    shapes = {}
    for n, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            shapes[n] = list(m.weight.shape)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            shapes[n] = [m.num_features]
    return shapes


def count_macs_and_params(model: nn.Module, example: torch.Tensor) -> tuple[int, int]:
    """Multiply-accumulates of one image and the parameter count (Torch-Pruning's op counter)."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, example[:1])
    return int(macs), int(params)


def _outputs(m: nn.Module) -> int:
    return m.out_channels if isinstance(m, nn.Conv2d) else m.out_features


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
