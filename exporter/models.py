"""Model source: a torchvision classifier with ImageNet, random or checkpoint weights.

Weights are loaded into torchvision's *quantizable* variant of the architecture
(same parameter names as the plain model), so every variant starts from one
float module.
"""

from __future__ import annotations

import pickle
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from exporter.errors import WeightsError
from runtimes.artifact import WeightsRecord, sha256_file
from runtimes.structure import SUPPORTED_MODELS, build_float_model, classifier_name


@dataclass(frozen=True)
class Preprocess:
    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET_PREPROCESS = Preprocess(256, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass
class LoadedModel:
    arch: str
    model: nn.Module  # float, eval mode
    num_classes: int
    weights: WeightsRecord
    preprocess: Preprocess  # the weights' own transform (ImageNet defaults otherwise)


def load_model(arch: str, weights: str, seed: int = 0) -> LoadedModel:
    """``weights`` is ``imagenet``, ``random`` or a path to a state_dict / checkpoint."""
    if arch not in SUPPORTED_MODELS:
        raise WeightsError(f"unknown or unsupported model {arch!r}; supported: {', '.join(SUPPORTED_MODELS)}")
    if weights == "imagenet":
        return _imagenet(arch)
    if weights == "random":
        torch.manual_seed(seed)
        model = build_float_model(arch, 1000)
        rec = WeightsRecord(source="random", trained=False,
                            label="UNTRAINED (random weights, seed %d): accuracy figures are meaningless" % seed)
        return LoadedModel(arch, model, 1000, rec, IMAGENET_PREPROCESS)
    return _checkpoint(arch, Path(weights))


def _imagenet(arch: str) -> LoadedModel:
    import torchvision.models as tvm

    enum_cls = tvm.get_model_weights(arch)
    w = enum_cls.IMAGENET1K_V1
    try:
        state = w.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise WeightsError(
            f"cannot download {enum_cls.__name__}.IMAGENET1K_V1 ({type(exc).__name__}: {exc}); "
            "this machine looks offline: pass --weights PATH (a state_dict or checkpoint you have) "
            "or --weights random (untrained)") from None
    model = build_float_model(arch, len(w.meta["categories"]))
    model.load_state_dict(state)
    t = w.transforms()
    pre = Preprocess(int(t.resize_size[0]), int(t.crop_size[0]), tuple(t.mean), tuple(t.std))
    rec = WeightsRecord(source="imagenet", trained=True, label=f"{enum_cls.__name__}.IMAGENET1K_V1 (torchvision)",
                        path=w.url)
    return LoadedModel(arch, model.eval(), len(w.meta["categories"]), rec, pre)


_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")


def _checkpoint(arch: str, path: Path) -> LoadedModel:
    if not path.is_file():
        raise WeightsError(f"--weights {path}: no such file (use imagenet, random or a path to a state_dict)")
    try:
        # weights_only: tensors and containers only; a pickle that would run code is refused.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"--weights {path}: refused to load (not a plain tensor checkpoint; "
                           f"it would need to unpickle arbitrary objects): {first}") from None
    except Exception as exc:  # arbitrary bytes make the unpickler fail in arbitrary ways
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"--weights {path}: corrupt or not a PyTorch checkpoint ({first})") from None
    state = _find_state_dict(obj, path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    cls_key = f"{classifier_name(None)}.weight"
    if cls_key not in state or not isinstance(state[cls_key], torch.Tensor) or state[cls_key].dim() != 2:
        raise WeightsError(f"--weights {path}: no classifier weight {cls_key!r}: not a {arch} checkpoint")
    num_classes = int(state[cls_key].shape[0])
    model = build_float_model(arch, num_classes)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise WeightsError(f"--weights {path} does not fit {arch}: "
                           f"{_few('missing', missing)}{'; ' if missing and unexpected else ''}"
                           f"{_few('unexpected', unexpected)}")
    bad = [k for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        k = bad[0]
        raise WeightsError(f"--weights {path} does not fit {arch}: {len(bad)} tensors have the wrong shape, "
                           f"e.g. {k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}")
    model.load_state_dict(state)
    rec = WeightsRecord(source="checkpoint", trained=True, label=f"checkpoint {path.name}",
                        path=str(path.resolve()), sha256=sha256_file(path))
    return LoadedModel(arch, model.eval(), num_classes, rec, IMAGENET_PREPROCESS)


def _find_state_dict(obj: object, path: Path) -> dict:
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in _STATE_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise WeightsError(f"--weights {path}: holds no state_dict (a dict of tensors, or a checkpoint dict "
                       f"with one under {', '.join(_STATE_KEYS)})")


def _few(kind: str, keys: list[str], n: int = 4) -> str:
    if not keys:
        return ""
    more = f" (+{len(keys) - n} more)" if len(keys) > n else ""
    return f"{len(keys)} {kind} keys: {', '.join(keys[:n])}{more}"
