import onnxruntime as ort, numpy as np, time
x = np.random.randn(1,3,224,224).astype(np.float32)
S = {}
for n in ["int8","ort-quantize-static"]:
    so = ort.SessionOptions(); so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    S[n] = ort.InferenceSession(f"/tmp/full/{n}.onnx", so, providers=["CPUExecutionProvider"])
for s in S.values():
    for _ in range(20): s.run(None, {"input": x})
res = {n: [] for n in S}
for r in range(300):
    for n, s in S.items():
        t=time.perf_counter(); s.run(None, {"input": x}); res[n].append((time.perf_counter()-t)*1000)
for n,v in res.items(): print(n, round(np.median(v),3), round(np.percentile(v,90),3))
