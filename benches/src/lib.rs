//! Vigil's benchmarks live in `benches/`; this library is empty. See `docs/benchmarks.md` for
//! what each one measures and the figures of the reference machine.
