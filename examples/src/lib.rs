//! Programs that embed Vigil's crates. Each is in `examples/examples/`; run one with
//! `cargo run -p vigil-examples --example NAME`.
