//! Time source for every expiry decision, replaceable so tests can move it.
//!
//! This is etdi-crypto's [`Clock`], re-exported: one [`ManualClock`] moves
//! token expiry, the JWKS and introspection caches and etdi-crypto's own
//! long-lived objects together. Times are [`UnixTime`] (whole seconds since
//! the epoch); a host clock before 1970 reads as the epoch, which makes every
//! token look not yet valid (fails closed).

pub use etdi_crypto::{Clock, ManualClock, SystemClock, UnixTime};
