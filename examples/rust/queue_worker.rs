//! A queue worker: takes jobs one by one from a queue-mode subscription, acks the ones it
//! handles and nacks the ones that fail, so they come back later and, after `max_deliveries`
//! attempts, land in the dead-letter topic. Run several to share the work.
//!
//! ```text
//! cargo run -p rapidmq --example producer -- jobs 100       # some jobs
//! cargo run -p rapidmq --example queue_worker -- jobs workers
//! ```
//! A job whose value contains `fail` is nacked. Stops after 5 seconds without jobs and prints
//! the dead letters. Environment: `RAPIDMQ_ENDPOINT`.

use std::time::Duration;

use rapidmq::{Client, StartPosition};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "jobs".to_string());
    let subscription = args.next().unwrap_or_else(|| "workers".to_string());
    let endpoint = std::env::var("RAPIDMQ_ENDPOINT")
        .unwrap_or_else(|_| rapidmq::defaults::ENDPOINT.to_string());

    let client = Client::connect(endpoint).await?;
    let worker = client
        .queue_consumer(&topic)
        .subscription(&subscription)
        .start(StartPosition::Earliest)
        .ack_deadline(Duration::from_secs(30))
        .max_deliveries(3)
        .prefetch(100)
        .subscribe()
        .await?;
    let (mut done, mut failed) = (0u64, 0u64);
    loop {
        let jobs = worker.poll(50, Duration::from_secs(5)).await?;
        if jobs.is_empty() {
            break;
        }
        for job in &jobs {
            let value = String::from_utf8_lossy(&job.message.value);
            if value.contains("fail") {
                println!(
                    "attempt {} of {value:?} failed; retrying in 1 s",
                    job.attempt
                );
                worker.nack(&job.receipt, Duration::from_secs(1))?;
                failed += 1;
            } else {
                worker.ack(&job.receipt)?;
                done += 1;
            }
        }
    }
    worker.close().await?;
    for err in worker.take_stream_errors() {
        eprintln!("broker reported: {err}");
    }
    println!("{done} jobs done, {failed} attempts failed");

    let dead = client
        .admin()
        .list_dead_letters(format!("{topic}.dlq"), 100, None)
        .await
        .map(|page| page.dead_letters)
        .unwrap_or_default();
    for letter in dead {
        println!(
            "dead letter from {}:{} after {} attempts ({}): {:?}",
            letter.original_partition,
            letter.original_offset,
            letter.attempts,
            letter.reason,
            String::from_utf8_lossy(&letter.message.value)
        );
    }
    Ok(())
}
