"""The compression wing: each step of a recipe is one module named for its method.

- :mod:`~exporter.compress.quantize`: static INT8 post-training quantization, fuse → prepare → calibrate → convert;
- :mod:`~exporter.compress.equalize`: cross-layer equalization of the float model before calibration (opt-in);
- :mod:`~exporter.compress.bias_correction`: INT8 layer biases shifted to the float model's mean outputs;
- :mod:`~exporter.compress.qat`: label-free quantization-aware training of the calibrated INT8 model;
- :mod:`~exporter.compress.magnitude`: unstructured L1 magnitude pruning (what to prune, score, mask, apply);
- :mod:`~exporter.compress.obs`: unstructured pruning with OBS / SparseGPT-style weight reconstruction;
- :mod:`~exporter.compress.unstructured`: unstructured pruning as one recipe step: the method, then the record;
- :mod:`~exporter.compress.channels`: channel (structured) pruning: what is coupled, how to score, the cut;
- :mod:`~exporter.compress.refit`: least-squares refit of the layers whose inputs lost channels;
- :mod:`~exporter.compress.batchnorm`: BatchNorm statistics re-estimated on images;
- :mod:`~exporter.compress.distill`: recovery by label-free distillation from the FP32 model;
- :mod:`~exporter.compress.slim`: the slim recipe: cut → BatchNorm → refit → distillation, each step measured.

The recipe (:mod:`exporter.recipe`) composes them; the builders (:mod:`exporter.builders`) call the recipe.
Nothing here imports the CLI, the pipeline or the report.
"""
