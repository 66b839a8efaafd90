//! Bench results: latency summaries from HdrHistograms, and the table or JSON report.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::output::{self, Stdout};

/// Latencies are recorded in microseconds, from 1 µs to one hour, at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Records `latency` (saturating at the histogram's bounds).
pub fn record(h: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    h.saturating_record(micros);
}

/// Percentiles of one phase, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub samples: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Latency {
            samples: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// One measured phase: publishing, or consuming.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// `publish` (latency: send → acknowledgement) or `consume` (latency: send → received,
    /// end to end; absent when the messages were published before the measurement).
    pub name: &'static str,
    pub messages: u64,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub latency: Option<Latency>,
}

impl Phase {
    pub fn new(
        name: &'static str,
        messages: u64,
        size: usize,
        elapsed: Duration,
        latency: &Histogram<u64>,
    ) -> Phase {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let msgs_per_sec = messages as f64 / seconds;
        Phase {
            name,
            messages,
            seconds,
            msgs_per_sec,
            mb_per_sec: msgs_per_sec * size as f64 / 1_000_000.0,
            latency: Latency::from_histogram(latency),
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub workload: &'static str,
    pub topic: String,
    /// Messages of the workload's main phase (published for `pub`, consumed otherwise).
    pub count: u64,
    /// Throughput of the main phase.
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub size: usize,
    pub batch: usize,
    pub inflight: usize,
    pub producers: usize,
    pub consumers: usize,
    pub partitions: u32,
    pub durability: &'static str,
    pub rate: Option<u64>,
    pub compression: &'static str,
    pub payload: super::Payload,
    pub phases: Vec<Phase>,
}

impl Report {
    pub fn print(&self, out: &mut Stdout, json: bool) -> std::io::Result<()> {
        if json {
            return out.json_pretty(self);
        }
        let rate = self.rate.map_or("closed loop".to_string(), |r| {
            format!("{r} msgs/s open loop")
        });
        out.line(format!(
            "bench {}: topic {} ({} partition(s), {}), {} B messages, batch {} x {} in flight, \
             {} producer(s), {} consumer(s), {rate}, compression {}",
            self.workload,
            self.topic,
            self.partitions,
            self.durability,
            self.size,
            self.batch,
            self.inflight,
            self.producers,
            self.consumers,
            self.compression,
        ))?;
        let mut table = output::table([
            "PHASE", "MESSAGES", "SECS", "MSGS/S", "MB/S", "P50 ms", "P90 ms", "P99 ms",
            "P99.9 ms", "MAX ms",
        ]);
        for p in &self.phases {
            let mut row = vec![
                p.name.to_string(),
                p.messages.to_string(),
                format!("{:.2}", p.seconds),
                format!("{:.0}", p.msgs_per_sec),
                format!("{:.1}", p.mb_per_sec),
            ];
            match &p.latency {
                Some(l) => row.extend(
                    [l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms].map(|v| format!("{v:.3}")),
                ),
                None => row.extend(std::iter::repeat_n("-".to_string(), 5)),
            }
            table.add_row(row);
        }
        output::print_table(out, &table)?;
        let has = |name| self.phases.iter().any(|p| p.name == name);
        match (has("publish"), has("consume")) {
            (true, true) => out.line(
                "publish latency: send → ack; consume latency: send → received (end to end)",
            )?,
            (true, false) => out.line("publish latency: send → ack")?,
            _ => {}
        }
        Ok(())
    }
}
