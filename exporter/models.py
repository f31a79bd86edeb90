"""Weights: a model of the catalogue loaded with ImageNet, random or checkpoint weights.

Which architectures exist, what each one is (:class:`~runtimes.architectures.ModelSpec`)
and how one is built all live in :mod:`runtimes.architectures`, which the runtimes use
too; this module only adds weights to the model built there, and says which
classifier a foreign checkpoint fits.
"""

from __future__ import annotations

import collections
import contextlib
import pickle
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from exporter.compress.batchnorm import recalibrate_batchnorm
from exporter.errors import WeightsError
from runtimes import architectures
from runtimes.architectures import ModelSpec, Preprocess
from runtimes.classifier import classifier_name
from runtimes.errors import BadInputError
from runtimes.manifest import WeightsRecord
from runtimes.records import sha256_file


@dataclass
class LoadedModel:
    arch: str
    model: nn.Module  # float, eval mode
    num_classes: int
    weights: WeightsRecord
    preprocess: Preprocess  # the weights' own transform (ImageNet defaults otherwise)


def load_model(arch: str, weights: str, seed: int = 0) -> LoadedModel:
    """``weights`` is ``imagenet``, ``random`` or a path to a state_dict / checkpoint."""
    try:
        spec = architectures.get_model_spec(arch)
    except BadInputError as exc:
        raise WeightsError(str(exc)) from None
    if weights == "imagenet":
        return _imagenet(spec)
    if weights == "random":
        torch.manual_seed(seed)
        model = architectures.build_float_model(arch, spec.num_classes)
        settle_batchnorm(model, spec.preprocess.crop, seed)
        return LoadedModel(arch, model, spec.num_classes, _random_record(seed, SYNTHETIC_BATCHNORM),
                           spec.preprocess)
    return _checkpoint(spec, Path(weights))


SYNTHETIC_BATCHNORM = "synthetic"


def _random_record(seed: int, batchnorm_source: str) -> WeightsRecord:
    where = "synthetic inputs" if batchnorm_source == SYNTHETIC_BATCHNORM else f"the images in {batchnorm_source}"
    return WeightsRecord(source="random", trained=False, batchnorm_source=batchnorm_source,
                         label=f"UNTRAINED (random weights, seed {seed}, BatchNorm statistics from {where}): "
                               f"accuracy figures are meaningless")


def settle_batchnorm_on_images(loaded: LoadedModel, images: torch.Tensor, source: str, seed: int = 0) -> int:
    """Re-estimate an untrained model's BatchNorm statistics on the real images the run will feed it.

    Statistics from standard-normal inputs do not match photographs: on real images an untrained
    EfficientNet-B0's activations then grow through its squeeze-excitation stages until two FP32
    implementations agree to only 23 dB. Settled on the run's own (preprocessed) images, every layer is at unit
    scale on what parity, calibration and accuracy feed it. Trained weights are never touched. Returns how
    many BatchNorm layers were set; records ``source`` in the weights record.
    """
    if loaded.weights.trained:
        raise BadInputError("settle_batchnorm_on_images: trained weights keep their own BatchNorm statistics")
    n = recalibrate_batchnorm(loaded.model, images, batch=min(len(images), 32))
    if n:
        loaded.weights = _random_record(seed, source)
    return n


# Synthetic images for settle_batchnorm: a few, enough for per-channel means and variances over their pixels.
SETTLE_IMAGES = 8


def settle_batchnorm(model: nn.Module, size: int, seed: int = 0) -> int:
    """Give a randomly initialised model the BatchNorm statistics of its own activations.

    torchvision initialises running statistics to mean 0, variance 1, which no activation
    has: in eval mode the deeper families' signals vanish (EfficientNet-B0's logits come out
    ~1e-14, MobileNetV3's ~1e-10) and INT8 of such a model is all zeros. Re-estimating the
    statistics on standard-normal inputs (the scale of normalised images) keeps every layer
    at unit scale, so latency, size and parity of an untrained model mean what they would for a
    trained one. ``size``: the model's own input size (MaxViT takes no other). Returns how many BatchNorm
    layers were set.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return 0
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(SETTLE_IMAGES, 3, size, size, generator=g)
    return recalibrate_batchnorm(model, images, batch=SETTLE_IMAGES // 2)


def _imagenet(spec: ModelSpec) -> LoadedModel:
    import torchvision.models as tvm

    w = tvm.get_weight(spec.weights)
    try:
        state = w.get_state_dict(progress=False, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise WeightsError(
            f"cannot download {spec.weights} ({type(exc).__name__}: {exc}); "
            "this machine looks offline: pass --weights PATH (a state_dict or checkpoint you have) "
            "or --weights random (untrained)") from None
    model = architectures.build_float_model(spec.name, spec.num_classes)
    model.load_state_dict(state)
    rec = WeightsRecord(source="imagenet", trained=True, label=f"{spec.weights} (torchvision)", path=w.url)
    return LoadedModel(spec.name, model.eval(), spec.num_classes, rec, spec.preprocess)


_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")


def _checkpoint(spec: ModelSpec, path: Path) -> LoadedModel:
    arch = spec.name
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
    found = _find_state_dict(obj, path)
    state = collections.OrderedDict((k.removeprefix("module."), v) for k, v in found.items())
    # Modules read their saved version from the state_dict's metadata (MNASNet refuses to load without it);
    # keep it through the renaming.
    metadata = getattr(found, "_metadata", None)
    if metadata is not None:
        state._metadata = type(metadata)((k.removeprefix("module."), v) for k, v in metadata.items())
    cls_key = architectures.classifier_weight_key(arch)
    if cls_key not in state or not isinstance(state[cls_key], torch.Tensor) or state[cls_key].dim() not in (2, 4):
        raise WeightsError(f"--weights {path}: no classifier weight {cls_key!r}: not a checkpoint of {arch}"
                           f"{_fits_instead(state, arch)}")
    num_classes = int(state[cls_key].shape[0])
    model = architectures.build_float_model(arch, num_classes)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise WeightsError(f"--weights {path} does not fit {arch}: "
                           f"{_few('missing', missing)}{'; ' if missing and unexpected else ''}"
                           f"{_few('unexpected', unexpected)}{_fits_instead(state, arch)}")
    bad = [k for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        k = bad[0]
        raise WeightsError(f"--weights {path} does not fit {arch}: {len(bad)} tensors have the wrong shape, "
                           f"e.g. {k} is {tuple(state[k].shape)}, expected {tuple(expected[k].shape)}"
                           f"{_fits_instead(state, arch)}")
    if getattr(state, "_metadata", None) is None:  # a plain dict: take the versions of the modules built here
        state._metadata = getattr(model.state_dict(), "_metadata", None)
    model.load_state_dict(state)
    rec = WeightsRecord(source="checkpoint", trained=True, label=f"checkpoint {path.name}",
                        path=str(path.resolve()), sha256=sha256_file(path))
    return LoadedModel(arch, model.eval(), num_classes, rec, spec.preprocess)


@contextlib.contextmanager
def _empty_weights():
    """Build modules with their parameters and buffers on the meta device: shapes only, no memory (what a
    key-and-shape comparison needs; ``torch.device("meta")`` alone breaks RegNet's width arithmetic)."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter(self, name, param):
        register_parameter(self, name, param)
        if param is not None:
            self._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    def buffer(self, name, tensor, persistent=True):
        register_buffer(self, name, tensor.to("meta") if tensor is not None else None, persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = parameter, buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


def models_fitting(state: dict) -> list[str]:
    """The classifiers whose state_dict has exactly these keys and shapes (any number of classes)."""
    import warnings

    import torchvision.models as tvm

    have = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    found = []
    for name in architectures.classifier_models():
        try:
            with _empty_weights(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kwargs = {"init_weights": False} if name in ("googlenet", "inception_v3") else {}
                model = tvm.get_model(name, weights=None, **kwargs)
        except Exception:  # noqa: BLE001 - a builder that cannot run without data is just not a candidate
            continue
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        head = classifier_name(model)
        if want.keys() == have.keys() and all(want[k] == have[k] or k.startswith(head + ".") for k in want):
            found.append(name)
    return found


def _fits_instead(state: dict, arch: str) -> str:
    """``; it is a <model> checkpoint`` when the state_dict fits another classifier exactly."""
    fits = [m for m in models_fitting(state) if m != arch]
    return f"; it fits {' or '.join(fits[:3])}: pass --model {fits[0]}" if fits else ""


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
