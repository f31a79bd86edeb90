"""What every building command loads first: the model, its preprocessing, calibration and eval images.

``export``, ``run``, ``sweep`` and ``sensitivity`` all start here, so each input
is loaded and reported the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from exporter.data import load_image_folder, make_preprocess, synthetic_images
from exporter.evaluation import EvalSet, decode_eval_set
from exporter.models import LoadedModel, load_model, settle_batchnorm_on_images
from exporter.options import CalibrationOptions, CompressionOptions, EvalOptions, ModelOptions, PreprocessOptions
from exporter.progress import SILENT, Reporter
from exporter.recipe import Recipe
from runtimes.architectures import Preprocess

SYNTHETIC = "synthetic"


@dataclass
class Inputs:
    loaded: LoadedModel
    preprocess: Preprocess
    calib_images: torch.Tensor  # preprocessed float32 NCHW
    calib_source: str  # "synthetic" or the calibration folder
    eval_set: EvalSet | None

    def recipe(self, compression: CompressionOptions, calibration: CalibrationOptions,
               max_accuracy_drop: float, reporter: Reporter = SILENT) -> Recipe:
        return Recipe(self.loaded, self.calib_images, self.calib_source, compression, calibration,
                      self.eval_set, max_accuracy_drop, reporter, self.preprocess)


def load_inputs(model: ModelOptions, preprocess: PreprocessOptions, calibration: CalibrationOptions,
                evaluation: EvalOptions, reporter: Reporter = SILENT) -> Inputs:
    loaded = load_model(model.model, model.weights)
    reporter.say(f"model {model.model}: weights {loaded.weights.label}")
    pre = make_preprocess(loaded.preprocess, preprocess)
    eval_set = (decode_eval_set(evaluation.data, pre, loaded.num_classes, evaluation.images, reporter)
                if evaluation.data is not None else None)
    if calibration.data is None:
        reporter.say(f"calibration: {calibration.images} SYNTHETIC inputs (no --calib-data given)")
        images, source = synthetic_images(calibration.images, pre, seed=0), SYNTHETIC
    else:
        found = load_image_folder(calibration.data, pre, limit=calibration.images,
                                  num_classes=loaded.num_classes)
        reporter.say(f"calibration: {len(found.images)} images from {calibration.data} "
                     f"({found.skipped} unreadable or non-image files skipped)")
        images, source = found.images, str(calibration.data)
        if not loaded.weights.trained and settle_batchnorm_on_images(loaded, images, source):
            reporter.say(f"untrained weights: BatchNorm statistics re-estimated on those {len(images)} images "
                         f"(not synthetic noise), so the network is well-conditioned on what it will be fed")
    return Inputs(loaded, pre, images, source, eval_set)
