//! Where each message of an acknowledged batch went: the pure mapping from a `PublishResponse`
//! to per-message receipts.
//!
//! The broker may append fewer messages than the batch held: delayed messages go to its
//! schedule (`scheduled` counts them) and, on topics with a dedup window, repeated `msg-id`s are
//! dropped (`deduplicated` lists their indexes). The others keep their relative order and take
//! offsets `base_offset ..`. The producer knows which of its messages are delayed, so it places
//! every message and checks the result against the broker's counts.

use rapidmq_proto::v1;

use crate::error::{Error, Result};
use crate::types::{Delivery, Durability, SendStatus};

/// Per-message results for a batch whose messages are delayed as `delayed` says.
pub(crate) fn place(
    delayed: &[bool],
    response: &v1::PublishResponse,
    durability: Durability,
) -> Result<Vec<Delivery>> {
    match place_with(delayed, response, &response.deduplicated, durability) {
        Ok(placed) => Ok(placed),
        // A duplicate answer (a resend of a stored batch) recomputes `deduplicated` against the
        // broker's current msg-id records, which now include the batch's own ids. When nothing
        // was dropped originally the counts still tell where everything went.
        Err(_) if response.duplicate => place_with(delayed, response, &[], durability),
        Err(err) => Err(err),
    }
}

fn place_with(
    delayed: &[bool],
    response: &v1::PublishResponse,
    deduplicated: &[u32],
    durability: Durability,
) -> Result<Vec<Delivery>> {
    let partition = response.partition;
    let mut next_offset = response.base_offset;
    let (mut appended, mut scheduled) = (0u32, 0u32);
    let mut out = Vec::with_capacity(delayed.len());
    for (index, &is_delayed) in delayed.iter().enumerate() {
        let (status, offset) = if deduplicated.contains(&(index as u32)) {
            (SendStatus::Deduplicated, None)
        } else if is_delayed {
            scheduled += 1;
            (SendStatus::Scheduled, None)
        } else {
            appended += 1;
            next_offset += 1;
            (SendStatus::Appended, Some(next_offset - 1))
        };
        out.push(Delivery {
            partition,
            offset,
            durability,
            status,
        });
    }
    let dedup_in_range = deduplicated.iter().all(|&i| (i as usize) < delayed.len());
    if appended != response.count || scheduled != response.scheduled || !dedup_in_range {
        return Err(Error::protocol(format!(
            "broker placed a batch of {} on partition {partition} as {} appended, {} scheduled, \
             {} deduplicated; the producer expected {appended} appended and {scheduled} scheduled",
            delayed.len(),
            response.count,
            response.scheduled,
            deduplicated.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(base: u64, count: u32, scheduled: u32, dedup: Vec<u32>) -> v1::PublishResponse {
        v1::PublishResponse {
            partition: 2,
            base_offset: base,
            count,
            scheduled,
            deduplicated: dedup,
            ..Default::default()
        }
    }

    #[test]
    fn delayed_and_deduplicated_messages_take_no_offsets_and_the_rest_keep_order() {
        let delayed = [false, true, false, false, true];
        let placed = place(&delayed, &response(10, 2, 1, vec![2, 4]), Durability::Fsync).unwrap();
        let got: Vec<_> = placed.iter().map(|d| (d.status, d.offset)).collect();
        assert_eq!(
            got,
            [
                (SendStatus::Appended, Some(10)),
                (SendStatus::Scheduled, None),
                (SendStatus::Deduplicated, None),
                (SendStatus::Appended, Some(11)),
                (SendStatus::Deduplicated, None),
            ]
        );
        assert!(placed.iter().all(|d| d.partition == 2));
    }

    #[test]
    fn counts_that_do_not_add_up_are_a_protocol_error() {
        let err = place(
            &[false, false],
            &response(0, 1, 0, vec![]),
            Durability::Fsync,
        );
        assert!(matches!(err, Err(Error::Protocol { .. })));
    }

    #[test]
    fn a_duplicate_answer_with_recomputed_dedup_indexes_falls_back_to_the_counts() {
        let mut r = response(5, 2, 0, vec![0, 1]);
        r.duplicate = true;
        let placed = place(&[false, false], &r, Durability::Fsync).unwrap();
        assert_eq!(placed[1].offset, Some(6));
    }
}
