//! Batches in flight for one partition, in sequence order, and what to do when one fails.
//!
//! A batch stays here from its first send until it completes, so its pending receipts, its
//! request (for resends) and its answer are kept together. Answers may arrive in any order;
//! batches complete strictly in order from the front.

use std::collections::VecDeque;

use rapidmq_proto::v1;
use tokio::time::Instant;

use super::accumulator::Pending;
use crate::error::Result;
use crate::retry::Backoff;

/// One batch sent (or waiting to be resent) and not yet completed.
pub(crate) struct Flight {
    pub(crate) request: v1::PublishRequest,
    pub(crate) messages: Vec<Pending>,
    /// The broker's answer, once it came.
    pub(crate) answer: Option<Result<v1::PublishResponse>>,
    /// A request for it is on the wire now.
    pub(crate) outstanding: bool,
    /// Retry budget, from its first retriable failure.
    pub(crate) backoff: Option<Backoff>,
}

impl Flight {
    pub(crate) fn len(&self) -> u64 {
        self.messages.len() as u64
    }
}

/// The in-flight window of one partition.
#[derive(Default)]
pub(crate) struct Window {
    pub(crate) flights: VecDeque<Flight>,
    /// A batch failed: no new batch is sent until the failure is handled.
    pub(crate) recovering: bool,
    /// When set, unanswered batches are resent (in order) at this time.
    pub(crate) resend_at: Option<Instant>,
}

impl Window {
    /// Whether every batch sent has been answered (nothing is on the wire).
    pub(crate) fn quiet(&self) -> bool {
        self.flights.iter().all(|f| !f.outstanding)
    }

    /// Gives every batch from `from` on without a successful answer new sequence numbers
    /// starting at `next` under `producer_id`, clears their answers so they are resent, and
    /// returns the sequence after the last batch.
    pub(crate) fn resequence(&mut self, producer_id: u64, mut next: u64) -> u64 {
        for flight in &mut self.flights {
            if matches!(flight.answer, Some(Ok(_))) {
                continue;
            }
            flight.request.producer_id = producer_id;
            flight.request.base_sequence = if producer_id == 0 { 0 } else { next };
            flight.answer = None;
            next += flight.len();
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn flight(
        base_sequence: u64,
        len: usize,
        answer: Option<Result<v1::PublishResponse>>,
    ) -> Flight {
        Flight {
            request: v1::PublishRequest {
                producer_id: 7,
                base_sequence,
                ..Default::default()
            },
            messages: (0..len)
                .map(|_| Pending::new(crate::types::Message::new("x"), 0, None, None))
                .collect(),
            answer,
            outstanding: false,
            backoff: None,
        }
    }

    #[test]
    fn resequencing_shifts_unanswered_batches_and_keeps_acknowledged_ones() {
        let mut window = Window::default();
        window
            .flights
            .push_back(flight(10, 2, Some(Ok(Default::default()))));
        window
            .flights
            .push_back(flight(12, 3, Some(Err(Error::unavailable("gap")))));
        window.flights.push_back(flight(15, 1, None));
        let next = window.resequence(7, 4);
        let got: Vec<_> = window
            .flights
            .iter()
            .map(|f| (f.request.base_sequence, f.answer.is_some()))
            .collect();
        assert_eq!(got, [(10, true), (4, false), (7, false)]);
        assert_eq!(next, 8);
        assert!(window.quiet());
    }

    #[test]
    fn resequencing_under_a_fresh_producer_id_starts_at_zero() {
        let mut window = Window::default();
        window.flights.push_back(flight(30, 2, None));
        window.flights.push_back(flight(32, 2, None));
        assert_eq!(window.resequence(99, 0), 4);
        assert!(window.flights.iter().all(|f| f.request.producer_id == 99));
        assert_eq!(window.flights[1].request.base_sequence, 2);
    }
}
