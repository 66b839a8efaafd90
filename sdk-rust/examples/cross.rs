//! The Rust side of the cross-language fidelity check (`tests/cross/run.sh`): publishes the
//! messages of a fixture, or reads a topic back and checks it holds exactly those messages, byte
//! for byte (key presence, value, headers in order) and at offsets 0, 1, 2, ...
//!
//! ```text
//! cargo run -p rapidmq --example cross -- publish|verify <endpoint> <topic> <fixture>
//! ```
//! The fixture format is described at the top of `tests/cross/messages.txt`.

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use rapidmq::{Client, Message, ReceivedMessage};

/// One fixture message: key (`None`: no key), value, headers in order.
#[derive(Debug, PartialEq)]
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
    let producer = client
        .producer(topic)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    for (index, expected) in messages.into_iter().enumerate() {
        let mut message = Message::new(expected.value);
        if let Some(key) = expected.key {
            message = message.with_key(key);
        }
        for (name, value) in expected.headers {
            message = message.with_header(name, value);
        }
        let receipt = producer.send(message).await.map_err(|e| e.to_string())?;
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

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, endpoint, topic, path] = &args[..] else {
        eprintln!("usage: cross publish|verify <endpoint> <topic> <fixture>");
        return ExitCode::from(2);
    };
    let result = async {
        let messages = fixture(path)?;
        let client = Client::connect(endpoint.clone())
            .await
            .map_err(|e| e.to_string())?;
        match command.as_str() {
            "publish" => publish(&client, topic, messages).await,
            "verify" => verify(&client, topic, messages).await,
            other => Err(format!("unknown command {other:?}")),
        }
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
