//! Pure statistics: latency histograms, medians and spread over repeats.

use std::time::Duration;

use hdrhistogram::Histogram;

/// A latency histogram in microseconds, 1 µs to 1 hour, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Records `elapsed` `count` times (saturating at the histogram's bounds).
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration, count: u64) {
    let micros = u64::try_from(elapsed.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, histogram.high());
    histogram.saturating_record_n(micros, count.max(1));
}

/// p50, p99 and p99.9 in µs, or `None` for an empty histogram.
pub fn percentiles(histogram: &Histogram<u64>) -> Option<[u64; 3]> {
    if histogram.is_empty() {
        return None;
    }
    Some([
        histogram.value_at_quantile(0.50),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
    ])
}

/// The median of `values` (the mean of the middle two for an even count), `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// The spread of `values`: (max − min) / median, as a percentage; `None` if empty or the median
/// is zero.
pub fn spread_percent(values: &[f64]) -> Option<f64> {
    let median = median(values)?;
    if median == 0.0 {
        return None;
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    Some((max - min) / median * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn spread_is_range_over_median() {
        let spread = spread_percent(&[90.0, 100.0, 110.0]).unwrap();
        assert!((spread - 20.0).abs() < 1e-9, "{spread}");
        assert_eq!(spread_percent(&[5.0, 5.0, 5.0]), Some(0.0));
        assert_eq!(spread_percent(&[0.0, 0.0]), None);
        assert_eq!(spread_percent(&[]), None);
    }

    #[test]
    fn percentiles_follow_recorded_latencies() {
        let mut h = histogram();
        assert_eq!(percentiles(&h), None);
        for micros in 1..=1000u64 {
            record(&mut h, Duration::from_micros(micros), 1);
        }
        let [p50, p99, p999] = percentiles(&h).unwrap();
        assert!((495..=505).contains(&p50), "{p50}");
        assert!((985..=995).contains(&p99), "{p99}");
        assert!((995..=1001).contains(&p999), "{p999}");
    }

    #[test]
    fn record_counts_batches_and_clamps() {
        let mut h = histogram();
        record(&mut h, Duration::ZERO, 100);
        record(&mut h, Duration::from_secs(10_000), 1);
        assert_eq!(h.len(), 101);
        assert_eq!(h.value_at_quantile(0.5), 1);
        assert!(h.max() >= 3_599_000_000);
    }
}
