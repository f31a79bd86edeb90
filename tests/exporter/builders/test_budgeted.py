"""The budget search's control flow: always a saved best effort, decisions recorded."""

import pytest
import torch

from exporter.builders import budgeted
from exporter.data import synthetic_images
from exporter.errors import BadInputError
from exporter.evaluation import EvalSet
from exporter.models import LoadedModel
from runtimes.architectures import IMAGENET_PREPROCESS
from exporter.options import CompressionOptions
from exporter.recipe import Recipe
from runtimes.manifest import PruneMethod, WeightsRecord
from runtimes.architectures import build_float_model


@pytest.fixture(scope="module")
def recipe():
    torch.manual_seed(0)
    model = build_float_model("resnet18", 10)
    loaded = LoadedModel("resnet18", model, 10, WeightsRecord("random", False, "UNTRAINED"),
                         IMAGENET_PREPROCESS)
    pre = IMAGENET_PREPROCESS.__class__(40, 32, IMAGENET_PREPROCESS.mean, IMAGENET_PREPROCESS.std)
    # Magnitude pruning: these tests prove the search's control flow (accuracy is faked), which does not depend
    # on how each candidate is pruned; OBS would reconstruct resnet18 once per candidate sparsity.
    return Recipe(loaded, synthetic_images(8, pre), "synthetic", CompressionOptions(method=PruneMethod.MAGNITUDE)), pre


def search(recipe: Recipe, ev: EvalSet, max_drop: float):
    """The ``auto`` variant's search, as its builder runs it."""
    return budgeted.search(recipe, ev, max_drop, recipe.compression)


@pytest.mark.slow  # about 45 INT8 conversions of resnet18
def test_unmeetable_budget_saves_the_best_effort(recipe, monkeypatch):
    r, pre = recipe
    ev = EvalSet(synthetic_images(8, pre, seed=3), torch.arange(8) % 10, "synthetic")
    calls = {"n": 0}

    def fake_accuracy(logits, labels):
        calls["n"] += 1
        # FP32 first; then every INT8 candidate is 10 points down, the 3rd candidate least bad
        return (100.0, 100.0) if calls["n"] == 1 else ((93.0, 99.0) if calls["n"] == 4 else (90.0, 99.0))

    monkeypatch.setattr(budgeted, "accuracy", fake_accuracy)
    built = search(r, ev, max_drop=1.0)
    d = built.decisions
    assert d["budget_met"] is False and "BUDGET NOT MET" in d["message"]
    assert d["drop"] == pytest.approx(7.0) and d["sparsity"] == 0.0
    assert len(d["keep_float"]) == 2 and d["keep_float"] == d["ranking"][:2]
    assert list(built.quant.keep_float) == d["keep_float"]
    assert built.model(ev.images).shape == (8, 10)


@pytest.mark.slow  # about 45 INT8 conversions of resnet18
def test_met_budget_takes_the_highest_sparsity_within_it(recipe, monkeypatch):
    r, pre = recipe
    ev = EvalSet(synthetic_images(8, pre, seed=3), torch.arange(8) % 10, "synthetic")
    seq = iter([(80.0, 90.0), (79.5, 90.0)] + [(60.0, 90.0)] * 3 + [(79.2, 90.0)] + [(79.0, 90.0)] * 10)
    monkeypatch.setattr(budgeted, "accuracy", lambda logits, labels: next(seq))
    built = search(r, ev, max_drop=1.0)
    d = built.decisions
    # int8 without float layers is within budget (0.5); 90/80/70% are not; 60% is (drop 0.8)
    assert d["budget_met"] is True and d["keep_float"] == [] and d["sparsity"] == 0.6
    assert built.sparsity.achieved == pytest.approx(0.6, abs=0.01)


def test_auto_needs_labels(recipe):
    r, pre = recipe
    with pytest.raises(BadInputError, match="labelled"):
        search(r, EvalSet(synthetic_images(2, pre), None, "synthetic"), 1.0)
