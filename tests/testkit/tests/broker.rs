//! The [`TestBroker`] against the real binary: pausing freezes the process, resuming thaws it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rapidmq_testkit::{TestBroker, thread_states};

/// One HTTP request to the broker; `None` when no answer came within `wait`.
fn http_get(broker: &TestBroker, path: &str, wait: Duration) -> Option<String> {
    let addr = broker.http_url().trim_start_matches("http://").to_string();
    let mut conn = TcpStream::connect(addr).expect("connect to the broker's HTTP port");
    conn.set_read_timeout(Some(wait)).unwrap();
    write!(conn, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn a_paused_broker_answers_nothing_until_it_is_resumed() {
    let mut broker = TestBroker::start();
    let pid = broker.pid().expect("a running broker");
    let patience = Duration::from_secs(10);
    assert!(http_get(&broker, "/healthz", patience).is_some());

    broker.pause();
    assert!(broker.is_paused());
    assert!(thread_states(pid).iter().all(|&s| s == 'T'));
    // The kernel still accepts the connection; the frozen process never answers it.
    assert_eq!(
        http_get(&broker, "/healthz", Duration::from_millis(500)),
        None
    );

    broker.resume();
    assert!(!broker.is_paused());
    assert!(thread_states(pid).iter().all(|&s| s != 'T'));
    let answer = http_get(&broker, "/healthz", patience).expect("an answer after resume");
    assert!(answer.starts_with("HTTP/1."), "{answer}");
}

#[test]
fn a_paused_broker_still_stops_gracefully() {
    let mut broker = TestBroker::start();
    broker.pause();
    broker.stop();
    assert_eq!(broker.pid(), None);
}
