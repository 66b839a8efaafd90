//! Installs the tracing subscriber for the binary: `RAPIDMQ_LOG` (or `RUST_LOG`) filters, default
//! `rapidmq=info,tower_http=info`; JSON lines when the log format is `json`.

use tracing_subscriber::EnvFilter;

pub const DEFAULT_FILTER: &str = "rapidmq=info,tower_http=info";

pub fn init(json: bool) {
    let filter = std::env::var("RAPIDMQ_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|spec| EnvFilter::try_new(spec).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
