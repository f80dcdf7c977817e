#!/usr/bin/env python3
"""Builds YOLOv8 ONNX models straight from safetensors weights, without ultralytics or torch.

The peer of Vigil's detector benchmark is ONNX Runtime on the same network. ultralytics'
exporter needs torch (gigabytes from PyPI); this script needs only ``numpy``, ``onnx`` and
``safetensors``. It writes, for each size asked for, ``DIR/yolov8X.safetensors`` (the weights,
in ultralytics' ``model.<i>...`` names, which Vigil reads too) and ``DIR/yolov8X-S.onnx`` for
each input size S (batch 1), the files ``benches/yolov8_ort.py --dir DIR`` times and
``VIGIL_BENCH_WEIGHTS=DIR cargo bench -p vigil-benches --bench detect`` loads.

Weights are either given (``--weights FILE`` for one size) or seeded random ones of the
published architecture (``--sizes n,s``); the cost of a forward pass does not depend on them.
Batch norm is folded into the convolutions in float64, as Vigil does and as ONNX Runtime would.

``--check PARITY.safetensors`` runs the model built from ``--weights`` on the fixture's
``images`` with ONNX Runtime and compares the result with ultralytics' ``output`` stored there:
that the graph here is the network Vigil is measured against.

Usage::

    python benches/yolov8_onnx.py --dir /tmp/yolo-bench --sizes n,s
    python benches/yolov8_onnx.py --dir /tmp/yolo-check \\
        --weights vigil-detect/tests/fixtures/yolov8/yolov8n-random.safetensors \\
        --check vigil-detect/tests/fixtures/yolov8/parity.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file, save_file

# Published scales: (depth, width, max channels).
SCALES = {
    "n": (0.33, 0.25, 1024),
    "s": (0.33, 0.50, 1024),
    "m": (0.67, 0.75, 768),
    "l": (1.00, 1.00, 512),
    "x": (1.00, 1.25, 512),
}
STRIDES = (8, 16, 32)
REG_MAX = 16
BN_EPS = 1e-3


def random_weights(size: str, classes: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded random weights with the tensor names and shapes of ultralytics' YOLOv8."""
    d, w, mx = SCALES[size]
    ch = lambda c: min(int(c * w), mx)  # noqa: E731
    rep = lambda n: max(round(n * d), 1)  # noqa: E731
    rng = np.random.default_rng(seed)
    t: dict[str, np.ndarray] = {}

    def conv(name: str, ci: int, co: int, k: int, bn: bool = True) -> None:
        t[f"{name}.conv.weight" if bn else f"{name}.weight"] = (
            rng.normal(0, 1 / np.sqrt(ci * k * k), (co, ci, k, k)).astype(np.float32)
        )
        if bn:
            t[f"{name}.bn.weight"] = rng.uniform(0.5, 1.5, co).astype(np.float32)
            t[f"{name}.bn.bias"] = rng.normal(0, 0.1, co).astype(np.float32)
            t[f"{name}.bn.running_mean"] = rng.normal(0, 0.1, co).astype(np.float32)
            t[f"{name}.bn.running_var"] = rng.uniform(0.5, 1.5, co).astype(np.float32)
        else:
            t[f"{name}.bias"] = rng.normal(0, 0.1, co).astype(np.float32)

    def c2f(i: int, ci: int, co: int, n: int) -> None:
        c = co // 2
        conv(f"model.{i}.cv1", ci, 2 * c, 1)
        for j in range(n):
            conv(f"model.{i}.m.{j}.cv1", c, c, 3)
            conv(f"model.{i}.m.{j}.cv2", c, c, 3)
        conv(f"model.{i}.cv2", (2 + n) * c, co, 1)

    c1, c2, c3, c4, c5 = ch(64), ch(128), ch(256), ch(512), ch(1024)
    conv("model.0", 3, c1, 3)
    conv("model.1", c1, c2, 3)
    c2f(2, c2, c2, rep(3))
    conv("model.3", c2, c3, 3)
    c2f(4, c3, c3, rep(6))
    conv("model.5", c3, c4, 3)
    c2f(6, c4, c4, rep(6))
    conv("model.7", c4, c5, 3)
    c2f(8, c5, c5, rep(3))
    conv("model.9.cv1", c5, c5 // 2, 1)
    conv("model.9.cv2", c5 // 2 * 4, c5, 1)
    c2f(12, c5 + c4, c4, rep(3))
    c2f(15, c4 + c3, c3, rep(3))
    conv("model.16", c3, c3, 3)
    c2f(18, c3 + c4, c4, rep(3))
    conv("model.19", c4, c4, 3)
    c2f(21, c4 + c5, c5, rep(3))
    box = max(16, c3 // 4, 4 * REG_MAX)
    cls = max(c3, min(classes, 100))
    for lvl, cin in enumerate((c3, c4, c5)):
        conv(f"model.22.cv2.{lvl}.0", cin, box, 3)
        conv(f"model.22.cv2.{lvl}.1", box, box, 3)
        conv(f"model.22.cv2.{lvl}.2", box, 4 * REG_MAX, 1, bn=False)
        conv(f"model.22.cv3.{lvl}.0", cin, cls, 3)
        conv(f"model.22.cv3.{lvl}.1", cls, cls, 3)
        conv(f"model.22.cv3.{lvl}.2", cls, classes, 1, bn=False)
    t["model.22.dfl.conv.weight"] = np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1)
    return t


class Graph:
    """A small builder: nodes, folded-conv initialisers, fresh names."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = {k: v.astype(np.float64) for k, v in weights.items()}
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op: str, inputs: list[str], hint: str | None = None, outputs: int = 1, **attrs) -> list[str]:
        outs = [self.name(hint or op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, outs, **attrs))
        return outs

    def conv(self, x: str, prefix: str, stride: int = 1, act: bool = True) -> str:
        """Conv (+ folded batch norm) (+ SiLU) from the weights under `prefix`."""
        if f"{prefix}.conv.weight" in self.w:
            wt = self.w[f"{prefix}.conv.weight"]
            g, b = self.w[f"{prefix}.bn.weight"], self.w[f"{prefix}.bn.bias"]
            m, v = self.w[f"{prefix}.bn.running_mean"], self.w[f"{prefix}.bn.running_var"]
            s = g / np.sqrt(v + BN_EPS)
            wt = wt * s[:, None, None, None]
            bias = b - m * s
        else:
            wt, bias = self.w[f"{prefix}.weight"], self.w[f"{prefix}.bias"]
        k = wt.shape[2]
        y = self.op(
            "Conv",
            [x, self.const(wt.astype(np.float32), "w"), self.const(bias.astype(np.float32), "b")],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
        )[0]
        if act:
            y = self.op("Mul", [y, self.op("Sigmoid", [y])[0]], "silu")[0]
        return y

    def c2f(self, x: str, i: int, shortcut: bool) -> str:
        y = self.conv(x, f"model.{i}.cv1")
        c = self.w[f"model.{i}.cv1.conv.weight"].shape[0] // 2
        parts = self.op("Split", [y, self.const(np.array([c, c], np.int64))], outputs=2, axis=1)
        n = 0
        while f"model.{i}.m.{n}.cv1.conv.weight" in self.w:
            n += 1
        last = parts[1]
        for j in range(n):
            t = self.conv(last, f"model.{i}.m.{j}.cv1")
            t = self.conv(t, f"model.{i}.m.{j}.cv2")
            last = self.op("Add", [last, t])[0] if shortcut else t
            parts.append(last)
        return self.conv(self.op("Concat", parts, axis=1)[0], f"model.{i}.cv2")

    def sppf(self, x: str) -> str:
        y = self.conv(x, "model.9.cv1")
        outs = [y]
        for _ in range(3):
            outs.append(self.op("MaxPool", [outs[-1]], kernel_shape=[5, 5], strides=[1, 1], pads=[2] * 4)[0])
        return self.conv(self.op("Concat", outs, axis=1)[0], "model.9.cv2")

    def up(self, x: str) -> str:
        scales = self.const(np.array([1, 1, 2, 2], np.float32))
        return self.op("Resize", [x, "", scales], mode="nearest")[0]


def build(weights: dict[str, np.ndarray], size: int) -> onnx.ModelProto:
    """The network of ultralytics' YOLOv8 in eval mode: [1, 3, S, S] → [1, 4 + nc, anchors]."""
    g = Graph(weights)
    x = "images"
    t = g.conv(x, "model.0", 2)
    t = g.conv(t, "model.1", 2)
    t = g.c2f(t, 2, True)
    t = g.conv(t, "model.3", 2)
    p3 = g.c2f(t, 4, True)
    t = g.conv(p3, "model.5", 2)
    p4 = g.c2f(t, 6, True)
    t = g.conv(p4, "model.7", 2)
    t = g.c2f(t, 8, True)
    p5 = g.sppf(t)
    n12 = g.c2f(g.op("Concat", [g.up(p5), p4], axis=1)[0], 12, False)
    out8 = g.c2f(g.op("Concat", [g.up(n12), p3], axis=1)[0], 15, False)
    out16 = g.c2f(g.op("Concat", [g.conv(out8, "model.16", 2), n12], axis=1)[0], 18, False)
    out32 = g.c2f(g.op("Concat", [g.conv(out16, "model.19", 2), p5], axis=1)[0], 21, False)
    nc = weights["model.22.cv3.0.2.weight"].shape[0]
    boxes, scores, anchors, strides = [], [], [], []
    for lvl, (feat, s) in enumerate(zip((out8, out16, out32), STRIDES)):
        b = feat
        for k in range(3):
            b = g.conv(b, f"model.22.cv2.{lvl}.{k}", act=k < 2)
        c = feat
        for k in range(3):
            c = g.conv(c, f"model.22.cv3.{lvl}.{k}", act=k < 2)
        h = w = size // s
        boxes.append(g.op("Reshape", [b, g.const(np.array([1, 4 * REG_MAX, h * w], np.int64))])[0])
        scores.append(g.op("Reshape", [c, g.const(np.array([1, nc, h * w], np.int64))])[0])
        ys, xs = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        anchors.append(np.stack([xs.ravel(), ys.ravel()]))
        strides.append(np.full(h * w, s, np.float32))
    n = sum(a.shape[1] for a in anchors)
    box = g.op("Concat", boxes, axis=2)[0]
    # DFL: for each side, softmax over 16 bins, expectation of the bin index.
    box = g.op("Reshape", [box, g.const(np.array([1, 4, REG_MAX, n], np.int64))])[0]
    box = g.op("Softmax", [box], axis=2)[0]
    bins = g.const(np.arange(REG_MAX, dtype=np.float32).reshape(1, 1, REG_MAX, 1))
    dist = g.op("ReduceSum", [g.op("Mul", [box, bins])[0], g.const(np.array([2], np.int64))], keepdims=0)[0]
    lt, rb = g.op("Split", [dist, g.const(np.array([2, 2], np.int64))], outputs=2, axis=1)
    anchor = g.const(np.concatenate(anchors, axis=1)[None].astype(np.float32))
    x1y1 = g.op("Sub", [anchor, lt])[0]
    x2y2 = g.op("Add", [anchor, rb])[0]
    cxy = g.op("Div", [g.op("Add", [x1y1, x2y2])[0], g.const(np.array(2, np.float32))])[0]
    wh = g.op("Sub", [x2y2, x1y1])[0]
    dbox = g.op("Mul", [g.op("Concat", [cxy, wh], axis=1)[0], g.const(np.concatenate(strides)[None, None])])[0]
    cls = g.op("Sigmoid", [g.op("Concat", scores, axis=2)[0]])[0]
    g.op("Concat", [dbox, cls], axis=1, hint="output")
    g.nodes[-1].output[0] = "output"
    graph = helper.make_graph(
        g.nodes,
        "yolov8",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4 + nc, n])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--sizes", default="n,s", help="model sizes with random weights (n,s,m,l,x)")
    ap.add_argument("--weights", type=Path, help="weights of one model instead (ultralytics names)")
    ap.add_argument("--inputs", default="320,640", help="square input sizes")
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--check", type=Path, help="parity fixture: compare ORT's output with it")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.weights:
        w = {k: v.astype(np.float32) for k, v in load_file(str(args.weights)).items()}
        c = w["model.0.conv.weight"].shape[0]
        size = {16: "n", 32: "s", 48: "m", 64: "l", 80: "x"}[c]
        models = {size: w}
    else:
        models = {s: random_weights(s, args.classes, args.seed) for s in args.sizes.split(",")}
    for size, w in models.items():
        save_file(w, str(args.dir / f"yolov8{size}.safetensors"))
        for s in (int(v) for v in args.inputs.split(",")):
            path = args.dir / f"yolov8{size}-{s}.onnx"
            onnx.save(build(w, s), str(path))
            print(f"wrote {path}")
    if args.check:
        import onnxruntime as ort

        ref = load_file(str(args.check))
        images = ref["images"].astype(np.float32) / 255
        w = next(iter(models.values()))
        s = images.shape[2]
        sess = ort.InferenceSession(build(w, s).SerializeToString(), providers=["CPUExecutionProvider"])
        got = np.concatenate([sess.run(None, {"images": images[i : i + 1]})[0] for i in range(len(images))])
        want = ref["output"].astype(np.float32)
        boxes = np.abs(got[:, :4] - want[:, :4]).max()
        scores = np.abs(got[:, 4:] - want[:, 4:]).max()
        print(f"ONNX Runtime vs ultralytics: scores within {scores:.2e}, boxes within {boxes:.3f} px")
        if not (scores < 5e-4 and boxes < 0.1):
            raise SystemExit("the ONNX graph does not match the reference")


if __name__ == "__main__":
    main()
