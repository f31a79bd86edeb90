"""Which layer of a model is its classifier, whatever the family calls it.

``fc`` (ResNet), ``classifier.1`` (MobileNetV2, EfficientNet), ``classifier.3``
(MobileNetV3), ``classifier.2`` (ConvNeXt), ``heads.head`` (ViT), a 1×1 conv
(SqueezeNet): found from the model, never from a list of names.
"""

from __future__ import annotations

from torch import nn

from runtimes.errors import BadInputError

# A layer kept FP32 inside an eager-mode INT8 model sits in Sequential(DeQuantStub, layer[, QuantStub]) as ".1".
_DEQUANT_TYPES = ("DeQuantStub", "DeQuantize")


def classifier_name(model: nn.Module) -> str:
    """The qualified name of the classifier: the last Linear layer in the model's module order,
    or, for models whose head is a convolution (SqueezeNet), the last Conv2d.

    Works on float, fused, prepared and converted models of either INT8 lane (names are kept by
    every step) and on the ``Float32IO`` wrapper of FP16 variants (its ``inner.`` prefix is dropped).
    """
    import torch.ao.nn.quantized as nnq

    linear, conv = (nn.Linear, nnq.Linear), (nn.Conv2d, nnq.Conv2d)
    names = [(n, m) for n, m in model.named_modules() if n]
    last_linear = [n for n, m in names if isinstance(m, linear)]
    last_conv = [n for n, m in names if isinstance(m, conv)]
    found = (last_linear or last_conv or [None])[-1]
    if found is None:
        raise BadInputError(f"{type(model).__name__} has no Linear or Conv2d layer to call its classifier")
    parent, _, last = found.rpartition(".")
    if last == "1" and parent and isinstance(model.get_submodule(parent), nn.Sequential) and \
            type(model.get_submodule(parent)[0]).__name__ in _DEQUANT_TYPES:
        found = parent
    return found.removeprefix("inner.")


def parent_of(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    """The module holding the named layer, and the layer's attribute name in it."""
    parts = name.split(".")
    parent = model
    try:
        for p in parts[:-1]:
            parent = getattr(parent, p)
        getattr(parent, parts[-1])
    except AttributeError:
        raise BadInputError(f"model has no layer named {name!r}") from None
    return parent, parts[-1]
