//! The RapidMQ client core behind a stable C ABI: what the Go SDK (`sdk-go/`) binds to, and what
//! any other language with a C FFI (C, C++, Ruby, .NET) can bind to. No client logic lives here;
//! every function converts C types, calls `rapidmq-core` and converts the result back.
//!
//! Conventions (the header `include/rapidmq.h` is generated from this crate by cbindgen):
//! - **Opaque handles** with `_new`/`_free` pairs (`connect`/`free` for clients): `RapidmqRuntime`
//!   (`runtime.rs`), `RapidmqClient` (`client.rs`), `RapidmqProducer` (`producer.rs`),
//!   `RapidmqConsumer` (`consumer.rs`), `RapidmqQueueConsumer` and `RapidmqReceipt` (`queue.rs`),
//!   `RapidmqCancel` (`cancel.rs`). Admin calls take the client (`admin.rs`; the caller,
//!   users and API tokens in `users.rs`; roles and bindings in `roles.rs`; tenants, quotas
//!   and the audit log in `tenants.rs`; cluster status, membership, leader rebalance and
//!   replica moves in `cluster.rs`).
//! - **Names** are `rapidmq_<object>_<verb>`.
//! - **Errors** (`error.rs`): fallible functions return a `RapidmqStatus` and fill an optional
//!   `RapidmqError` (`{code, kind, retriable, message}`); the message is a Rust-owned buffer
//!   released with `rapidmq_error_clear` (or `rapidmq_bytes_free` on the message itself).
//! - **Memory** (`buffer.rs`): inputs are borrowed for the duration of the call (`RapidmqStr`,
//!   pointer + length, not NUL-terminated). Outputs are Rust-owned: byte buffers are freed with
//!   `rapidmq_bytes_free`, result objects (message batches, topic descriptions, …) with their
//!   `rapidmq_<object>_free`; everything they point to lives until then (`arena.rs`).
//! - **Blocking and async**: every operation has a blocking form that takes an optional
//!   `RapidmqCancel` (trigger it from another thread to interrupt the call: it fails with kind
//!   `RAPIDMQ_ERROR_KIND_CANCELLED`). Sends also have a callback form,
//!   `callback(user_data, result)`, called from a core runtime thread when the receipt resolves,
//!   and a completion-queue form (`completions.rs`): sends carry a token, and the caller takes
//!   outcomes many at a time with `rapidmq_completions_wait`, with no callback per message.
//! - **Panics never cross the boundary**: every export runs under `catch_unwind` (`guard` in
//!   `error.rs`) and reports a panic as an `INTERNAL` error of kind `RAPIDMQ_ERROR_KIND_PANIC`.
//! - Conversions between C structs and core types live in `types.rs` and `config.rs`.

// Enum variants carry their C names (RAPIDMQ_STATUS_OK, …) so the header reads like C.
#![allow(non_camel_case_types)]

mod admin;
mod arena;
mod buffer;
mod cancel;
mod client;
mod cluster;
mod completions;
mod config;
mod consumer;
mod error;
mod producer;
mod queue;
mod roles;
mod runtime;
mod tenants;
mod types;
mod users;
mod version;

pub use admin::*;
pub use buffer::*;
pub use cancel::*;
pub use client::*;
pub use cluster::*;
pub use completions::*;
pub use config::*;
pub use consumer::*;
pub use error::*;
pub use producer::*;
pub use queue::*;
pub use roles::*;
pub use runtime::*;
pub use tenants::*;
pub use types::*;
pub use users::*;
pub use version::*;
