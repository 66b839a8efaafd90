//! The RapidMQ broker as a library: the `rapidmq serve` binary and the tests both open a
//! [`Broker`] and call [`Broker::serve`] with bound [`Listeners`] and a shutdown future.
//!
//! Layout:
//! - [`engine`]: topics, partitions (group commit, tail cache), subscriptions, retention. Knows
//!   nothing of transports; every call takes a [`Principal`].
//! - [`storage`]: the `Store` trait with RocksDB and in-memory implementations.
//! - [`cluster`]: raft storage for the raft groups (log store, state machine, key layout).
//! - `grpc`: tonic services over the engine (plus server reflection).
//! - `http`: the HTTP listener: health and readiness, and the REST API (`rest`) with its
//!   hygiene layers.
//! - `rest`: the REST adapter over the engine (JSON under `/v1`, SSE, WebSocket, OpenAPI).
//! - [`observability`]: metrics (`/metrics`), message-flow events, connection counting;
//!   `dashboard`: the live dashboard served at `/`.
//! - `net`: what every listener does to the connections it accepts (TCP_NODELAY).
//! - [`clock`]: wall-clock time, one `Clock` the engine holds (a manual one in tests).
//! - `budget`: the broker-wide byte budget of publishes in flight (backpressure).
//! - [`auth`]: users, tokens and logins, and the layer that authenticates every request.
//! - [`tenant`]: tenants, their quotas (token buckets, stored bytes, connections).
//! - [`config`]: file + environment + flags.
//! - [`error`]: the one error type, carrying a stable `ErrorCode`.

pub mod allocator;
pub mod audit;
pub mod auth;
mod budget;
pub mod clock;
pub mod cluster;
pub mod config;
mod dashboard;
pub mod engine;
pub mod error;
mod grpc;
mod http;
mod net;
pub mod observability;
pub mod principal;
pub mod rest;
mod server;
pub mod storage;
pub mod tenant;
pub mod tls;

pub use config::Config;
pub use error::{Error, Result};
pub use principal::Principal;
pub use server::{Broker, Listeners};
