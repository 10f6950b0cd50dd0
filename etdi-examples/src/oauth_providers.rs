//! stub
use crate::narrative::{Narrative, Outcome};
/// Runs the example.
pub async fn run(_n: Narrative) -> Outcome { Ok(()) }
