#!/usr/bin/env python3
"""Times ONNX Runtime on YOLOv8 ONNX exports: the peer that Vigil's detector is measured against.

The ONNX files come from ``benches/yolov8_onnx.py --dir DIR`` (needs only numpy, onnx and
safetensors; its graph matches ultralytics' output on the parity fixture) or from
``vigil-detect/tests/fixtures/yolov8/generate.py --bench-dir DIR`` (ultralytics' exporter, needs
torch); either way seeded random weights, the same ones as ``DIR/yolov8{n,s}.safetensors``,
fixed batch 1: ``yolov8n-320.onnx``, ``yolov8n-640.onnx``, ``yolov8s-320.onnx``,
``yolov8s-640.onnx``.

Usage::

    /work/yolo-venv/bin/python benches/yolov8_ort.py --dir /work/yolo-bench --threads 2

ONNX Runtime runs with ``intra_op_num_threads`` = ``--threads`` (use the thread count Vigil's
detector is given), ``inter_op_num_threads`` = 1 and sequential execution, on the CPU provider.
Each model gets ``--warmup`` untimed runs, then ``--blocks`` blocks of ``--runs`` runs timed one
by one; the table shows the median and the minimum of the per-run times over all blocks. Models
are timed one after another, never interleaved call by call (spinning thread pools of two
runtimes slow each other down). The input is ultralytics' bus.jpg letterboxed to S x S as
ultralytics does it, or uniform noise in [0, 1] when ultralytics (or its assets) is not installed
or ``--random-input`` is given; the network's cost does not depend on the pixel values.
Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

MODELS = ("yolov8n", "yolov8s")
SIZES = (320, 640)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_input(size: int, random_input: bool, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """[1, 3, S, S] float32 in [0, 1]: a letterboxed real picture if possible, else noise."""
    if not random_input:
        try:
            import cv2
            import ultralytics
            from ultralytics.data.augment import LetterBox

            bgr = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"), cv2.IMREAD_COLOR)
            if bgr is not None:
                img = LetterBox(new_shape=(size, size), auto=False)(image=bgr)
                chw = img[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255  # BGR->RGB, CHW
                return np.ascontiguousarray(chw[None]), "bus.jpg letterboxed"
        except ImportError:
            pass
    return rng.random((1, 3, size, size), dtype=np.float32), "uniform noise"


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def time_model(sess: ort.InferenceSession, x: np.ndarray, warmup: int, blocks: int, runs: int) -> list[float]:
    """Per-run wall times in milliseconds."""
    feed = {sess.get_inputs()[0].name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(blocks):
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/work/yolo-bench"), help="folder with the ONNX files")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="runs per block")
    parser.add_argument("--random-input", action="store_true", help="uniform noise instead of a real picture")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"onnxruntime {ort.__version__}, python {platform.python_version()}")
    print(f"cpu: {cpu_model()}")
    rows = []
    for name in args.models:
        for size in args.sizes:
            path = args.dir / f"{name}-{size}.onnx"
            if not path.exists():
                print(f"skipping {path}: not found", file=sys.stderr)
                continue
            x, what = make_input(size, args.random_input, rng)
            times = time_model(session(path, args.threads), x, args.warmup, args.blocks, args.runs)
            blocks = [statistics.median(times[i : i + args.runs]) for i in range(0, len(times), args.runs)]
            rows.append((name, size, args.threads, statistics.median(times), min(times), blocks, what))
    if not rows:
        print("no ONNX files found", file=sys.stderr)
        return 1
    print(f"{args.warmup} warm-up runs, then {args.blocks} blocks x {args.runs} runs; input: {rows[0][6]}")
    print(f"{'model':<8} {'size':>4} {'threads':>7} {'median ms':>10} {'min ms':>8}  block medians ms")
    for name, size, threads, med, lo, blocks, _ in rows:
        print(f"{name:<8} {size:>4} {threads:>7} {med:>10.2f} {lo:>8.2f}  {' '.join(f'{b:.2f}' for b in blocks)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
