"""Eager references are plain state_dicts: they load weights-only into the structure the manifest describes."""

from __future__ import annotations

import torch

from runtimes import structure
from runtimes.manifest import read_manifest


def test_references_load_weights_only_into_their_skeleton(exported):
    m = read_manifest(exported)
    assert {r.variant for r in m.references} == {v for v in m.variants() if v != "ort-quantize-static"}
    for ref in m.references:
        assert ref.format == "eager" and ref.path == f"{ref.variant}.eager.pt"
        state = torch.load(exported / ref.path, map_location="cpu", weights_only=True)
        model = structure.skeleton(ref.model, ref.num_classes, ref.precision.value, ref.quantization.keep_float,
                                   shapes=ref.channels.shapes if ref.channels else None)
        model.load_state_dict(state)  # strict: every key and shape matches
