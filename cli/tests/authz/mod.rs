//! The authorization matrix's parts: `rules` (every operation, what it needs, how to call it)
//! and `harness` (names, outcomes, calls, and a broker whose callers hold chosen permissions).

pub mod harness;
pub mod rules;
