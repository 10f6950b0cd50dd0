//! The `etdi` command.
#![forbid(unsafe_code)]

fn main() {}
