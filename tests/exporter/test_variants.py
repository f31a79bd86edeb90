import pytest

from exporter.errors import BadInputError
from exporter.variants import SEED_VARIANTS, VariantSpec, all_variants, parse_variants, register_variant
from runtimes.artifact import Precision


def test_seed_variants_registered():
    names = [v.name for v in all_variants()]
    for n in SEED_VARIANTS:
        assert n in names


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="already registered"):
        register_variant(VariantSpec("fp32", "again", Precision.FP32))


def test_parse_variants_errors():
    with pytest.raises(BadInputError, match="unknown variant 'int4'"):
        parse_variants("fp32,int4")
    with pytest.raises(BadInputError, match="twice"):
        parse_variants("fp32,fp32")
    assert [v.name for v in parse_variants(" int8 , fp16")] == ["int8", "fp16"]


@pytest.mark.parametrize("spec", all_variants(), ids=lambda s: s.name)
def test_every_variant_is_consistent(spec):
    assert spec.description
    assert not (spec.quantize and spec.half)
    if spec.precision in (Precision.INT8, Precision.MIXED) and not spec.peer:
        assert spec.quantize
    if spec.compare_with:
        assert spec.compare_with in [v.name for v in all_variants()]
