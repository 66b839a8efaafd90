//! One JSON record per run, and the markdown tables rendered from a file of them: medians over
//! repeats with their spread, and the RapidMQ/peer ratios.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::stats::{median, spread_percent};
use crate::systems::{System, Tier};
use crate::workload::Workload;

/// One run, as `rapidmq-bench run` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub system: String,
    pub tier: String,
    pub workload: String,
    pub size: usize,
    pub batch: usize,
    pub consumers: usize,
    /// Open loop: offered messages/s.
    pub rate: f64,
    pub repeat: u32,
    pub published: u64,
    pub publish_secs: f64,
    pub delivered: u64,
    pub deliver_secs: f64,
    /// p50, p99, p99.9 in µs.
    pub ack_us: Option<[u64; 3]>,
    pub e2e_us: Option<[u64; 3]>,
    pub fsyncs: Option<u64>,
    /// 1-minute load average when the run ended.
    pub load1: f64,
    /// Why the system cannot run this (e.g. NATS has no fsync tier).
    pub unsupported: Option<String>,
    pub error: Option<String>,
}

impl Record {
    fn publish_rate(&self) -> Option<f64> {
        (self.published > 0 && self.publish_secs > 0.0)
            .then(|| self.published as f64 / self.publish_secs)
    }

    fn deliver_rate(&self) -> Option<f64> {
        (self.delivered > 0 && self.deliver_secs > 0.0)
            .then(|| self.delivered as f64 / self.deliver_secs)
    }

    fn fsync_rate(&self) -> Option<f64> {
        let secs = if self.workload == "replay" {
            self.publish_secs
        } else {
            self.publish_secs.max(self.deliver_secs)
        };
        self.fsyncs
            .and_then(|n| (secs > 0.0).then(|| n as f64 / secs))
    }

    fn ok(&self) -> bool {
        self.unsupported.is_none() && self.error.is_none()
    }
}

/// The rows of the tables: one per (workload, size, shape, tier, system).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    workload: Workload,
    size: usize,
    batch: usize,
    consumers: usize,
    rate: u64,
    tier: Tier,
    system: System,
}

impl Key {
    fn of(record: &Record) -> Option<Key> {
        Some(Key {
            workload: record.workload.parse().ok()?,
            size: record.size,
            batch: record.batch,
            consumers: record.consumers,
            rate: record.rate as u64,
            tier: record.tier.parse().ok()?,
            system: record.system.parse().ok()?,
        })
    }

    /// What the workload does, for the table.
    fn shape(&self) -> String {
        match self.workload {
            Workload::Latency => "1P/1C, batch 1, 1 in flight".to_string(),
            Workload::Throughput => format!("1P/1C, batch {}", self.batch),
            Workload::Fanout => format!("1P → {}C, batch {}", self.consumers, self.batch),
            Workload::Replay => "read all from the start".to_string(),
            Workload::OpenLoop => format!("{} msgs/s offered", thousands(self.rate as f64)),
        }
    }

    fn peer_group(&self) -> PeerGroup {
        (
            self.workload,
            self.size,
            self.batch,
            self.consumers,
            self.rate,
            self.tier,
        )
    }
}

/// The rows one ratio compares: everything of the key but the system.
type PeerGroup = (Workload, usize, usize, usize, u64, Tier);

/// Medians of one row's repeats.
#[derive(Debug, Default)]
struct Row {
    runs: usize,
    publish: Option<f64>,
    publish_spread: Option<f64>,
    deliver: Option<f64>,
    deliver_spread: Option<f64>,
    ack: Option<[f64; 3]>,
    e2e: Option<[f64; 3]>,
    fsyncs: Option<f64>,
    load: Option<(f64, f64)>,
    note: Option<String>,
}

fn summarize(records: &[&Record]) -> Row {
    let ok: Vec<&&Record> = records.iter().filter(|r| r.ok()).collect();
    let note = records
        .iter()
        .find_map(|r| r.unsupported.clone())
        .map(|why| format!("n/a: {why}"))
        .or_else(|| {
            records.iter().find_map(|r| r.error.clone()).map(|e| {
                format!(
                    "{} of {} runs failed: {e}",
                    records.len() - ok.len(),
                    records.len()
                )
            })
        });
    let collect = |f: &dyn Fn(&Record) -> Option<f64>| -> Vec<f64> {
        ok.iter().filter_map(|r| f(r)).collect()
    };
    let publish = collect(&|r| r.publish_rate());
    let deliver = collect(&|r| r.deliver_rate());
    let fsyncs = collect(&|r| r.fsync_rate());
    let percentile = |f: &dyn Fn(&Record) -> Option<[u64; 3]>| -> Option<[f64; 3]> {
        let mut out = [0.0; 3];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = median(&collect(&|r| f(r).map(|p| p[i] as f64)))?;
        }
        Some(out)
    };
    let loads: Vec<f64> = records.iter().map(|r| r.load1).collect();
    Row {
        runs: ok.len(),
        publish: median(&publish),
        publish_spread: spread_percent(&publish),
        deliver: median(&deliver),
        deliver_spread: spread_percent(&deliver),
        ack: percentile(&|r| r.ack_us),
        e2e: percentile(&|r| r.e2e_us),
        fsyncs: median(&fsyncs),
        load: (!loads.is_empty()).then(|| {
            (
                loads.iter().copied().fold(f64::MAX, f64::min),
                loads.iter().copied().fold(f64::MIN, f64::max),
            )
        }),
        note,
    }
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

fn rate_cell(rate: Option<f64>, spread: Option<f64>) -> String {
    match (rate, spread) {
        (Some(rate), Some(spread)) => format!("{} ±{:.0}%", thousands(rate), spread / 2.0),
        (Some(rate), None) => thousands(rate),
        _ => String::new(),
    }
}

fn micros(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0} ms", value / 1000.0)
    } else if value >= 1000.0 {
        format!("{:.2} ms", value / 1000.0)
    } else {
        format!("{value:.0} µs")
    }
}

fn percentile_cell(p: Option<[f64; 3]>) -> String {
    p.map(|[a, b, c]| format!("{} / {} / {}", micros(a), micros(b), micros(c)))
        .unwrap_or_default()
}

/// The metric a workload is judged by, larger is better for RapidMQ in the ratio.
fn headline(workload: Workload, row: &Row) -> Option<(f64, bool)> {
    match workload {
        Workload::Latency => row.ack.map(|p| (p[0], false)),
        Workload::OpenLoop => row.e2e.map(|p| (p[1], false)),
        Workload::Throughput => row.publish.map(|r| (r, true)),
        Workload::Fanout | Workload::Replay => row.deliver.map(|r| (r, true)),
    }
}

fn headline_name(workload: Workload) -> &'static str {
    match workload {
        Workload::Latency => "ack p50",
        Workload::OpenLoop => "end-to-end p99",
        Workload::Throughput => "publish msgs/s",
        Workload::Fanout | Workload::Replay => "delivered msgs/s",
    }
}

/// Renders the results and ratio tables from run records.
pub fn render(records: &[Record]) -> String {
    let mut groups: BTreeMap<Key, Vec<&Record>> = BTreeMap::new();
    for record in records {
        if let Some(key) = Key::of(record) {
            groups.entry(key).or_default().push(record);
        }
    }
    let rows: BTreeMap<&Key, Row> = groups.iter().map(|(k, v)| (k, summarize(v))).collect();
    let mut out = String::new();
    out.push_str(
        "| workload | size | shape | tier | system (setting) | publish msgs/s | publish MB/s | delivered msgs/s | ack p50 / p99 / p99.9 | end-to-end p50 / p99 / p99.9 | fsyncs/s | runs | load avg |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (key, row) in &rows {
        let system = format!("{} ({})", key.system, key.system.tier_setting(key.tier));
        let lead = format!(
            "| {} | {} B | {} | {} | {system} |",
            key.workload,
            key.size,
            key.shape(),
            key.tier
        );
        if let (Some(note), 0) = (&row.note, row.runs) {
            let _ = writeln!(out, "{lead} {note} | | | | | | 0 | |");
            continue;
        }
        let mb = row.publish.map(|r| r * key.size as f64 / 1e6);
        let _ = writeln!(
            out,
            "{lead} {} | {} | {} | {} | {} | {} | {}{} | {} |",
            rate_cell(row.publish, row.publish_spread),
            mb.map(|m| format!("{m:.1}")).unwrap_or_default(),
            rate_cell(row.deliver, row.deliver_spread),
            percentile_cell(row.ack),
            if key.workload == Workload::Replay {
                "—".to_string()
            } else {
                percentile_cell(row.e2e)
            },
            row.fsyncs.map(thousands).unwrap_or_default(),
            row.runs,
            row.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            row.load
                .map(|(lo, hi)| format!("{lo:.1}–{hi:.1}"))
                .unwrap_or_default(),
        );
    }

    out.push_str(
        "\nRapidMQ against each peer on the workload's headline metric, medians of the same run \
         (above 1: RapidMQ better; for latencies the peer's figure divided by RapidMQ's):\n\n\
         | workload | size | shape | tier | metric | RapidMQ | vs NATS JetStream | vs Redis Streams |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut peers: BTreeMap<PeerGroup, BTreeMap<System, (&Key, &Row)>> = BTreeMap::new();
    for (key, row) in &rows {
        peers
            .entry(key.peer_group())
            .or_default()
            .insert(key.system, (*key, row));
    }
    for (group, systems) in &peers {
        let Some((key, rapid)) = systems.get(&System::Rapidmq) else {
            continue;
        };
        let Some((ours, larger_better)) = headline(group.0, rapid) else {
            continue;
        };
        let ratio = |peer: System| -> String {
            let Some((_, row)) = systems.get(&peer) else {
                return String::new();
            };
            if let (Some(note), 0) = (&row.note, row.runs) {
                return if note.starts_with("n/a") {
                    "n/a".to_string()
                } else {
                    "failed".to_string()
                };
            }
            match headline(group.0, row) {
                Some((theirs, _)) if theirs > 0.0 && ours > 0.0 => {
                    let r = if larger_better {
                        ours / theirs
                    } else {
                        theirs / ours
                    };
                    format!("{r:.2}×")
                }
                _ => String::new(),
            }
        };
        let ours_cell = if larger_better {
            thousands(ours)
        } else {
            micros(ours)
        };
        let _ = writeln!(
            out,
            "| {} | {} B | {} | {} | {} | {ours_cell} | {} | {} |",
            group.0,
            group.1,
            key.shape(),
            group.5,
            headline_name(group.0),
            ratio(System::Nats),
            ratio(System::Redis),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(system: &str, tier: &str, repeat: u32, published: u64, secs: f64) -> Record {
        Record {
            system: system.into(),
            tier: tier.into(),
            workload: "throughput".into(),
            size: 100,
            batch: 100,
            consumers: 1,
            rate: 0.0,
            repeat,
            published,
            publish_secs: secs,
            delivered: published,
            deliver_secs: secs * 2.0,
            ack_us: Some([100, 200, 300]),
            e2e_us: Some([1000, 2000, 3000]),
            fsyncs: (system == "rapidmq").then_some(50),
            load1: 1.0 + repeat as f64,
            unsupported: None,
            error: None,
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn renders_medians_spread_and_ratios() {
        let records = vec![
            record("rapidmq", "fsync", 0, 90_000, 1.0),
            record("rapidmq", "fsync", 1, 100_000, 1.0),
            record("rapidmq", "fsync", 2, 110_000, 1.0),
            record("redis", "fsync", 0, 50_000, 1.0),
            Record {
                unsupported: Some("no fsync".into()),
                published: 0,
                ..record("nats", "fsync", 0, 0, 0.0)
            },
        ];
        let table = render(&records);
        // Median 100,000 with a ±10 % half-spread; MB/s at 100 B; fsyncs/s over the 2 s run.
        let rapid = table
            .lines()
            .find(|l| l.contains("rapidmq (durability fsync)"))
            .unwrap();
        assert!(
            rapid.contains("| 100,000 ±10% | 10.0 | 50,000 ±10% |"),
            "{rapid}"
        );
        assert!(rapid.contains("100 µs / 200 µs / 300 µs"), "{rapid}");
        assert!(rapid.contains("1.00 ms / 2.00 ms / 3.00 ms"), "{rapid}");
        assert!(rapid.contains("| 25 | 3 | 1.0–3.0 |"), "{rapid}");
        let nats = table.lines().find(|l| l.contains("nats (n/a)")).unwrap();
        assert!(nats.contains("n/a: no fsync"), "{nats}");
        // Ratio row: RapidMQ 100k vs Redis 50k = 2×, NATS n/a.
        let ratio = table
            .lines()
            .find(|l| l.contains("| publish msgs/s | 100,000 |"))
            .unwrap();
        assert!(ratio.ends_with("| n/a | 2.00× |"), "{ratio}");
    }

    #[test]
    fn latency_ratios_are_peer_over_ours() {
        let mut ours = record("rapidmq", "memory", 0, 1000, 1.0);
        ours.workload = "latency".into();
        ours.ack_us = Some([50, 80, 90]);
        let mut theirs = record("nats", "memory", 0, 1000, 1.0);
        theirs.workload = "latency".into();
        theirs.ack_us = Some([100, 150, 200]);
        let table = render(&[ours, theirs]);
        let ratio = table
            .lines()
            .find(|l| l.contains("| ack p50 | 50 µs |"))
            .unwrap();
        assert!(ratio.ends_with("| 2.00× |  |"), "{ratio}");
    }

    #[test]
    fn failed_runs_are_reported() {
        let mut failed = record("redis", "memory", 0, 0, 0.0);
        failed.error = Some("connection refused".into());
        let table = render(&[failed]);
        assert!(
            table.contains("1 of 1 runs failed: connection refused"),
            "{table}"
        );
    }

    #[test]
    fn records_round_trip_as_json() {
        let r = record("nats", "persisted", 2, 10, 0.5);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), r);
    }
}
