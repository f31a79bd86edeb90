"""The variant registry: every variant names a registered builder with its typed parameters;
adding a variant is one registration."""

import pytest

from exporter.builders.base import get_builder
from exporter.builders.floating import FloatParams
from exporter.errors import BadInputError
from exporter.variants import (Role, VariantSpec, all_variants, check_request, default_variants, get_variant,
                               needs_images, parse_variants, register_variant, sweepable, unregister_variant)
from runtimes.manifest import Precision

SEED_VARIANTS = ("fp32", "fp32-pruned", "int8", "fp16", "mixed")


def test_seed_variants_registered():
    names = [v.name for v in all_variants()]
    for n in SEED_VARIANTS:
        assert n in names


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_variant(VariantSpec("fp32", "again", Precision.FP32, "float", FloatParams()))


def test_unknown_builder_and_wrong_params_rejected():
    with pytest.raises(BadInputError, match="unknown builder 'int4'"):
        register_variant(VariantSpec("x-int4", "int4", Precision.INT8, "int4", FloatParams()))
    with pytest.raises(TypeError, match="takes QuantParams"):
        register_variant(VariantSpec("x-int8", "int8", Precision.INT8, "int8", FloatParams()))
    assert "x-int4" not in [v.name for v in all_variants()]


def test_parse_variants_errors():
    with pytest.raises(BadInputError, match="unknown variant 'int4'"):
        parse_variants("fp32,int4")
    with pytest.raises(BadInputError, match="twice"):
        parse_variants("fp32,fp32")
    assert [v.name for v in parse_variants(" int8 , fp16")] == ["int8", "fp16"]


@pytest.mark.parametrize("spec", all_variants(), ids=lambda s: s.name)
def test_every_variant_is_consistent(spec):
    assert spec.description
    builder = get_builder(spec.builder)
    assert isinstance(spec.params, builder.params_type)
    if spec.precision in (Precision.INT8, Precision.MIXED) and spec.role is not Role.PEER:
        assert builder.quantizes
    if spec.compare_with:
        assert spec.compare_with in [v.name for v in all_variants()]
        assert spec.role is Role.PEER


def test_defaults_and_roles_come_from_the_registry():
    assert default_variants(with_peers=False) == ("fp32", "fp32-pruned", "int8", "fp16", "mixed")
    assert default_variants(with_peers=True) == (*default_variants(with_peers=False), "ort-quantize-static")
    roles = {v.role: v.name for v in all_variants() if v.role not in (Role.VARIANT, Role.PEER)}
    assert roles == {Role.BASELINE: "fp32", Role.HEADLINE: "int8", Role.BUDGETED: "auto"}
    # two peers; only ORT's runs by default (NNCF's needs calibration images)
    assert [v.name for v in all_variants() if v.role is Role.PEER] == ["ort-quantize-static", "nncf-ptq"]
    assert [v.name for v in all_variants() if needs_images(v)] == ["nncf-ptq"]
    assert [s.name for s in sweepable(all_variants())] == ["fp32-pruned", "int8", "fp16", "mixed", "fp32-slim",
                                                            "int8-slim"]


def test_requests_that_cannot_be_built_are_refused_with_one_line():
    with pytest.raises(BadInputError, match="add fp32 to --variants"):
        check_request("resnet18", parse_variants("ort-quantize-static"), has_eval=False)
    with pytest.raises(BadInputError, match="auto variant needs --eval-data"):
        check_request("resnet18", parse_variants("auto"), has_eval=False)
    with pytest.raises(BadInputError, match="'vit_b_16' has no INT8 quantization lane"):
        check_request("vit_b_16", parse_variants("fp32,int8"), has_eval=False)
    # float variants and the ORT peer need no INT8 lane of ours
    check_request("vit_b_16", parse_variants("fp32,fp16,ort-quantize-static"), has_eval=False)
    check_request("wide_resnet50_2", parse_variants("fp32,int8,mixed"), has_eval=False)  # the FX lane
    with pytest.raises(BadInputError, match="nncf-ptq variant needs --calib-data"):
        check_request("resnet18", parse_variants("fp32,nncf-ptq"), has_eval=False, has_calib=False)
    check_request("resnet18", parse_variants("fp32,nncf-ptq"), has_eval=False, has_calib=True)


@pytest.fixture()
def fp16_dense():
    spec = register_variant(VariantSpec("fp16-dense", "half precision, no pruning", Precision.FP16, "float",
                                        FloatParams(half=True), group="FP16 + pruning"))
    yield spec
    unregister_variant(spec.name)


def test_adding_a_variant_is_one_registration(fp16_dense, tmp_path):
    """Registered here, exported, checked and reported with no other change."""
    from exporter.export import ExportOptions, export
    from exporter.options import CalibrationOptions, ModelOptions, PreprocessOptions
    from exporter.parity_gate import require_parity, run_parity
    from exporter.report.context import table_groups
    from runtimes.bench.results import Cell, Status

    assert get_variant("fp16-dense") is fp16_dense
    out = tmp_path / "run"
    manifest = export(ExportOptions(out=out, model=ModelOptions("resnet18", "random"), variants=("fp16-dense",),
                                    calibration=CalibrationOptions(images=2),
                                    preprocess=PreprocessOptions(resize=40, input_size=32)))
    assert {(a.variant, a.format) for a in manifest.artifacts} == {("fp16-dense", "torchscript"),
                                                                   ("fp16-dense", "onnx")}
    # (a few tiny weights underflow to zero in float16)
    assert manifest.artifacts[0].sparsity.achieved < 1e-4 and manifest.artifacts[0].precision is Precision.FP16
    require_parity(run_parity(out))
    cells = [Cell("fp16-dense", "onnx", "ort-cpu", "cpu", 1, "fp16", Status.SKIPPED)]
    assert ("FP16 + pruning", ["fp16", "fp16-dense"]) in table_groups(cells)
