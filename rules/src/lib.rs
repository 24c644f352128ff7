//! The rules that decide money, with nothing else in the way: the referral graph in
//! memory (`graph`) and the payout rule over it (`payout`). No I/O, no clock, no async, so
//! the processor's ledger, `referral verify`, the bench seed, the property tests and the
//! fuzz targets all call the same code, and the fuzz build stays small.
#![forbid(unsafe_code)]

pub mod graph;
pub mod payout;
