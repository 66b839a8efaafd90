//! The RapidMQ client core as UniFFI bindings.
