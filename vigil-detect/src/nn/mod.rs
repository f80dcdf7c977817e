//! Neural-network inference on the CPU: our convolution kernels and the YOLOv8 graph.
//!
//! candle loads and holds the tensors (safetensors files, dtype conversion, the raw-output
//! API); the hot loop runs on the kernels here, which fold batch norm into the convolutions,
//! work in NHWC and fuse bias, SiLU, residuals and concatenation into the matrix product's
//! epilogue (see `docs/benchmarks.md` for why).

pub(crate) mod kernels;
pub(crate) mod yolov8;
