//! `rapidmq bench codec`: what batch compression does to a producer's batches, without a broker.
//!
//! For each codec it builds batches the way the client core does (`rapidmq_proto::batch`), then
//! times compressing and decompressing them, repeating for about half a second per codec.
//! Reported per batch: plain and packed size, ratio, and microseconds to compress and to
//! decompress; plus throughput in MB of plain batch per second. One thread, no I/O.

use std::time::{Duration, Instant};

use prost::Message as _;
use rapidmq_proto::batch;
use rapidmq_proto::v1::{self as pb, Compression};
use serde::Serialize;

use super::workers::{Payload, value};
use crate::output::{self, Stdout};

/// Timing runs per codec last at least this long (and at least `MIN_ROUNDS` rounds).
const MEASURE_FOR: Duration = Duration::from_millis(500);
const MIN_ROUNDS: u32 = 20;
/// Distinct batches cycled through, so the codecs do not see one batch over and over.
const BATCHES: u64 = 8;

#[derive(Debug, Serialize)]
pub struct CodecReport {
    pub workload: &'static str,
    pub size: usize,
    pub batch: usize,
    pub payload: Payload,
    pub codecs: Vec<CodecRow>,
}

#[derive(Debug, Serialize)]
pub struct CodecRow {
    pub codec: &'static str,
    /// Mean encoded batch size: the messages as a plain batch, and as sent.
    pub plain_bytes: u64,
    pub packed_bytes: u64,
    /// `plain_bytes / packed_bytes`.
    pub ratio: f64,
    pub compress_us: f64,
    pub decompress_us: f64,
    /// Plain batch bytes compressed (or decompressed) per second, in MB.
    pub compress_mb_per_sec: f64,
    pub decompress_mb_per_sec: f64,
}

pub fn run(size: usize, batch_messages: usize, payload: Payload) -> CodecReport {
    let epoch = tokio::time::Instant::now();
    let plain: Vec<Vec<u8>> = (0..BATCHES)
        .map(|b| {
            let messages = (0..batch_messages as u64)
                .map(|i| {
                    let n = b * batch_messages as u64 + i;
                    pb::Message {
                        value: value(size, epoch, epoch, payload, n),
                        timestamp_delta_ms: i as i64,
                        ..Default::default()
                    }
                })
                .collect();
            pb::MessageBatch {
                messages,
                ..Default::default()
            }
            .encode_to_vec()
        })
        .collect();
    let plain_bytes = plain.iter().map(|b| b.len() as u64).sum::<u64>() / BATCHES;
    let codecs = [
        ("none", Compression::None),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ]
    .into_iter()
    .map(|(name, codec)| {
        let packed: Vec<Vec<u8>> = plain.iter().map(|p| batch::compress(codec, p)).collect();
        let packed_bytes = packed.iter().map(|b| b.len() as u64).sum::<u64>() / BATCHES;
        let compress = time_per_round(|i| {
            std::hint::black_box(batch::compress(codec, &plain[i]));
        });
        let decompress = time_per_round(|i| {
            let out = batch::decompress(codec, &packed[i], usize::MAX).expect("own frame");
            std::hint::black_box(out);
        });
        let mb_per_sec = |d: Duration| plain_bytes as f64 / d.as_secs_f64().max(1e-12) / 1e6;
        CodecRow {
            codec: name,
            plain_bytes,
            packed_bytes,
            ratio: plain_bytes as f64 / packed_bytes.max(1) as f64,
            compress_us: compress.as_secs_f64() * 1e6,
            decompress_us: decompress.as_secs_f64() * 1e6,
            compress_mb_per_sec: mb_per_sec(compress),
            decompress_mb_per_sec: mb_per_sec(decompress),
        }
    })
    .collect();
    CodecReport {
        workload: "codec",
        size,
        batch: batch_messages,
        payload,
        codecs,
    }
}

/// Mean time of one call of `round` (given the batch index to use).
fn time_per_round(mut round: impl FnMut(usize)) -> Duration {
    let started = Instant::now();
    let mut rounds = 0u32;
    while rounds < MIN_ROUNDS || started.elapsed() < MEASURE_FOR {
        round(rounds as usize % BATCHES as usize);
        rounds += 1;
    }
    started.elapsed() / rounds
}

impl CodecReport {
    pub fn print(&self, out: &mut Stdout, json: bool) -> std::io::Result<()> {
        if json {
            return out.json_pretty(self);
        }
        let payload = match self.payload {
            Payload::Filler => "filler",
            Payload::Json => "JSON-like",
        };
        out.line(format!(
            "bench codec: batches of {} x {} B {payload} messages, one thread",
            self.batch, self.size
        ))?;
        let mut table = output::table([
            "CODEC",
            "PLAIN B",
            "SENT B",
            "RATIO",
            "COMPRESS µs",
            "DECOMPRESS µs",
            "COMPRESS MB/S",
            "DECOMPRESS MB/S",
        ]);
        for row in &self.codecs {
            table.add_row(vec![
                row.codec.to_string(),
                row.plain_bytes.to_string(),
                row.packed_bytes.to_string(),
                format!("{:.2}", row.ratio),
                format!("{:.1}", row.compress_us),
                format!("{:.1}", row.decompress_us),
                format!("{:.0}", row.compress_mb_per_sec),
                format!("{:.0}", row.decompress_mb_per_sec),
            ]);
        }
        output::print_table(out, &table)?;
        out.line("per batch; none copies the batch, the floor of any codec")
    }
}
