//! The Rust side of the cross-language fidelity check (`tests/cross/run.sh`): publishes the
//! messages of a fixture, or reads a topic back and checks it holds exactly those messages, byte
//! for byte (key presence, value, headers in order) and at offsets 0, 1, 2, ...
//!
//! Request/reply: `request` sends each fixture message as a request and checks that the reply
//! echoes it byte for byte; `respond` answers `requesters` times the fixture's requests on a
//! queue subscription, echoing each (its key, value and headers but `reply-to` and
//! `correlation-id`).
//!
//! ```text
//! cargo run -p rapidmq --example cross -- publish|verify|request <endpoint> <topic> <fixture>
//! cargo run -p rapidmq --example cross -- respond <endpoint> <topic> <fixture> <requesters>
//! ```
//! The fixture format is described at the top of `tests/cross/messages.txt`.

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use std::time::Duration;

use rapidmq::{
    CORRELATION_ID_HEADER, Client, Message, REPLY_TO_HEADER, ReceivedMessage, StartPosition,
};

/// One fixture message: key (`None`: no key), value, headers in order.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    key: Option<Bytes>,
    value: Bytes,
    headers: Vec<(String, Bytes)>,
}

fn decode(text: &str) -> Result<Bytes, String> {
    STANDARD
        .decode(text)
        .map(Bytes::from)
        .map_err(|err| format!("bad base64 {text:?}: {err}"))
}

fn parse(line: &str) -> Result<Expected, String> {
    let mut tokens = line.split(' ');
    let key = match tokens.next() {
        Some("-") => None,
        Some(token) => Some(decode(token.strip_prefix("k:").ok_or("no key token")?)?),
        None => return Err("empty line".into()),
    };
    let value = tokens.next().and_then(|t| t.strip_prefix("v:"));
    let value = decode(value.ok_or("no value token")?)?;
    let headers = tokens
        .map(|token| {
            let mut parts = token.strip_prefix("h:").ok_or("not a header")?.split(':');
            let (Some(name), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("bad header token {token:?}"));
            };
            let name = String::from_utf8(decode(name)?.to_vec()).map_err(|e| e.to_string())?;
            Ok((name, decode(value)?))
        })
        .collect::<Result<_, String>>()?;
    Ok(Expected {
        key,
        value,
        headers,
    })
}

fn fixture(path: &str) -> Result<Vec<Expected>, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(parse)
        .collect()
}

async fn publish(client: &Client, topic: &str, messages: Vec<Expected>) -> Result<(), String> {
    let compression = match std::env::var("CROSS_COMPRESSION") {
        Ok(name) => name.parse().map_err(|e: rapidmq::Error| e.to_string())?,
        Err(_) => rapidmq::Compression::None,
    };
    let producer = client
        .producer(topic)
        .compression(compression)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    for (index, expected) in messages.into_iter().enumerate() {
        let receipt = producer
            .send(message(expected))
            .await
            .map_err(|e| e.to_string())?;
        let delivery = receipt.await.map_err(|e| e.to_string())?;
        if delivery.offset != Some(index as u64) {
            return Err(format!(
                "message {index} went to offset {:?}",
                delivery.offset
            ));
        }
    }
    producer.close().await.map_err(|e| e.to_string())
}

fn seen(m: &ReceivedMessage) -> Expected {
    Expected {
        key: m.key.clone(),
        value: m.value.clone(),
        headers: m.headers.clone(),
    }
}

async fn verify(client: &Client, topic: &str, messages: Vec<Expected>) -> Result<(), String> {
    let mut read = Vec::new();
    while read.len() < messages.len() {
        let fetched = client
            .fetch(topic, 0, read.len() as u64, 1000)
            .await
            .map_err(|e| e.to_string())?;
        if fetched.messages.is_empty() {
            return Err(format!("{} of {} messages", read.len(), messages.len()));
        }
        read.extend(fetched.messages);
    }
    for (index, (m, expected)) in read.iter().zip(&messages).enumerate() {
        if m.offset != index as u64 || m.partition != 0 {
            return Err(format!("message {index} at {}/{}", m.partition, m.offset));
        }
        if seen(m) != *expected {
            return Err(format!(
                "message {index}: read {:?}, sent {expected:?}",
                seen(m)
            ));
        }
    }
    Ok(())
}

/// `expected` as a message to send.
fn message(expected: Expected) -> Message {
    let mut message = Message::new(expected.value);
    if let Some(key) = expected.key {
        message = message.with_key(key);
    }
    for (name, value) in expected.headers {
        message = message.with_header(name, value);
    }
    message
}

/// `m` without the headers request/reply adds.
fn echoed(m: &ReceivedMessage) -> Expected {
    let mut seen = seen(m);
    seen.headers
        .retain(|(name, _)| name != REPLY_TO_HEADER && name != CORRELATION_ID_HEADER);
    seen
}

async fn request(client: &Client, topic: &str, messages: Vec<Expected>) -> Result<(), String> {
    for (index, expected) in messages.into_iter().enumerate() {
        let reply = client
            .request(topic, message(expected.clone()), Duration::from_secs(30))
            .await
            .map_err(|e| format!("request {index}: {e}"))?;
        if echoed(&reply) != expected {
            return Err(format!(
                "request {index}: the reply was {:?}, the request {expected:?}",
                echoed(&reply)
            ));
        }
    }
    Ok(())
}

async fn respond(client: &Client, topic: &str, count: usize) -> Result<(), String> {
    let consumer = client
        .queue_consumer(topic)
        .subscription("responders")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .map_err(|e| e.to_string())?;
    let mut answered = 0;
    while answered < count {
        let deliveries = consumer
            .poll(count - answered, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        if deliveries.is_empty() {
            return Err(format!("answered {answered} of {count} requests"));
        }
        for delivery in deliveries {
            let reply = message(echoed(&delivery.message));
            client
                .reply(&delivery.message, reply)
                .await
                .map_err(|e| e.to_string())?;
            consumer.ack(&delivery.receipt).map_err(|e| e.to_string())?;
            answered += 1;
        }
    }
    consumer.close().await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, endpoint, topic, path, requesters) = match &args[..] {
        [command, endpoint, topic, path] => (command, endpoint, topic, path, None),
        [command, endpoint, topic, path, n] if command == "respond" => {
            (command, endpoint, topic, path, n.parse::<usize>().ok())
        }
        _ => {
            eprintln!(
                "usage: cross publish|verify|request <endpoint> <topic> <fixture>\n       \
                 cross respond <endpoint> <topic> <fixture> <requesters>"
            );
            return ExitCode::from(2);
        }
    };
    let result = async {
        let messages = fixture(path)?;
        let client = Client::connect(endpoint.clone())
            .await
            .map_err(|e| e.to_string())?;
        let outcome = match command.as_str() {
            "publish" => publish(&client, topic, messages).await,
            "verify" => verify(&client, topic, messages).await,
            "request" => request(&client, topic, messages).await,
            "respond" => {
                let requesters = requesters.ok_or("respond needs a count of requesters")?;
                respond(&client, topic, requesters * messages.len()).await
            }
            other => Err(format!("unknown command {other:?}")),
        };
        client.close().await.map_err(|e| e.to_string())?;
        outcome
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rust {command} {topic}: {err}");
            ExitCode::FAILURE
        }
    }
}
