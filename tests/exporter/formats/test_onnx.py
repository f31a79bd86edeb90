"""The INT8 ONNX is the TorchScript INT8 model: same INT8 weights, scales and zero points."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from runtimes.manifest import read_manifest
from runtimes.quant_engine import set_quantized_engine


def _const(producers: dict, name: str) -> np.ndarray:
    node = producers[name]
    assert node.op_type == "Constant", node.op_type
    return numpy_helper.to_array(node.attribute[0].t)


def onnx_int8_weights(path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(int8 weight, scales, zero points) of every Conv/Gemm, in graph order."""
    g = onnx.load(str(path)).graph
    producers = {o: n for n in g.node for o in n.output}
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    out = []
    for n in g.node:
        if n.op_type not in ("Conv", "Gemm"):
            continue
        dq = producers.get(n.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue  # a float layer (e.g. mixed's classifier)
        get = lambda name: inits[name] if name in inits else _const(producers, name)  # noqa: E731
        out.append((get(dq.input[0]), get(dq.input[1]), get(dq.input[2])))
    return out


def onnx_activation_qparams(path) -> set[tuple[float, int]]:
    g = onnx.load(str(path)).graph
    producers = {o: n for n in g.node for o in n.output}
    return {(float(_const(producers, n.input[1])), int(_const(producers, n.input[2])))
            for n in g.node if n.op_type == "QuantizeLinear" and n.input[1] in producers
            and producers[n.input[1]].op_type == "Constant" and _const(producers, n.input[1]).ndim == 0}


def torchscript_int8_weights(path) -> tuple[list, set[tuple[float, int]]]:
    set_quantized_engine()
    ts = torch.jit.load(str(path))
    weights, acts = [], set()
    for n in ts.graph.nodes():
        if not n.kind().startswith("quantized::"):
            continue
        ins = list(n.inputs())
        for i in ins:
            if "PackedParams" in str(i.type()):
                w, _ = i.node().output().toIValue().unpack()
                weights.append((w.int_repr().numpy(), w.q_per_channel_scales().numpy().astype(np.float32),
                                w.q_per_channel_zero_points().numpy()))
        if n.kind() in ("quantized::conv2d", "quantized::conv2d_relu", "quantized::linear",
                        "quantized::add", "quantized::add_relu"):
            scale, zp = ins[-2].toIValue(), ins[-1].toIValue()
            acts.add((float(np.float32(scale)), int(zp)))
    return weights, acts


@pytest.mark.parametrize("variant", ["int8", "mixed", "int8-dense"])
def test_qdq_onnx_carries_exactly_the_torchscript_int8_weights(exported, variant):
    ts_w, ts_acts = torchscript_int8_weights(exported / f"{variant}.pt")
    ox_w = onnx_int8_weights(exported / f"{variant}.onnx")
    assert len(ts_w) == len(ox_w) >= 20
    for (tw, ts, tz), (ow, os_, oz) in zip(ts_w, ox_w):
        assert ow.dtype == np.int8
        np.testing.assert_array_equal(tw.reshape(ow.shape), ow)
        np.testing.assert_array_equal(ts, os_)
        np.testing.assert_array_equal(tz.astype(np.int64), oz.astype(np.int64))
    # every activation scale/zero point of the TorchScript model appears in the QDQ graph
    missing = ts_acts - onnx_activation_qparams(exported / f"{variant}.onnx")
    assert not missing, missing


def test_int8_pruned_zeros_survive_in_onnx(exported):
    m = read_manifest(exported)
    rec = next(a for a in m.artifacts if a.variant == "int8" and a.format == "onnx")
    ws = onnx_int8_weights(exported / "int8.onnx")
    zeros = sum(int((w == 0).sum()) for w, _, _ in ws)
    total = sum(w.size for w, _, _ in ws)
    assert abs(zeros / total - rec.sparsity.achieved) < 1e-6
    assert rec.sparsity.achieved >= rec.sparsity.requested - 0.01


def test_onnx_files_are_self_contained_with_dynamic_batch(exported):
    import onnxruntime as ort

    m = read_manifest(exported)
    for rec in (a for a in m.artifacts if a.format == "onnx"):
        proto = onnx.load(str(exported / rec.path), load_external_data=False)
        onnx.checker.check_model(proto, full_check=True)
        assert not any(i.data_location == onnx.TensorProto.EXTERNAL for i in proto.graph.initializer)
        assert [i.name for i in proto.graph.input] == ["input"]
        assert [o.name for o in proto.graph.output] == ["logits"]
        dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
        assert dim0.dim_param and not dim0.dim_value
        sess = ort.InferenceSession(str(exported / rec.path), providers=["CPUExecutionProvider"])
        for n in (1, 5):
            y = sess.run(None, {"input": np.random.randn(n, 3, 64, 64).astype(np.float32)})[0]
            assert y.shape == (n, 1000) and y.dtype == np.float32 and np.isfinite(y).all()


def test_fp16_onnx_is_float16_inside(exported):
    proto = onnx.load(str(exported / "fp16.onnx"))
    types = {i.data_type for i in proto.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in types and onnx.TensorProto.FLOAT not in types
