//! Runnable ETDI examples. Each workflow is an example under `examples/`,
//! run with `cargo run -p etdi-examples --example NAME` and exercised by a
//! test in `tests/`. The library itself is empty on purpose: examples stay
//! out of every library's dependency graph.
#![forbid(unsafe_code)]
