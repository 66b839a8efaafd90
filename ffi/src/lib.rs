//! The RapidMQ client core behind a stable C ABI.
