//! Query parameters with bounds narrower than their type (`max`, `wait_ms`, `limit`): a value
//! outside what the OpenAPI document states is refused with `400 INVALID_ARGUMENT`, never
//! silently clamped. The document's literal bounds are checked against these constants by the
//! tests in `openapi`.

use std::time::Duration;

use super::error::ApiError;

/// Most messages one fetch or poll returns (`max`).
pub const MAX_MESSAGES: u32 = 10_000;
/// Longest `wait_ms` a fetch or poll accepts. The broker waits at most half of
/// `http.request_timeout_ms` even so.
pub const MAX_WAIT_MS: u64 = 30_000;

/// `value` (or `default` when absent) if it lies in `min..=max`.
pub fn in_range<T>(name: &str, value: Option<T>, default: T, min: T, max: T) -> Result<T, ApiError>
where
    T: PartialOrd + Copy + std::fmt::Display,
{
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(ApiError::invalid(format!(
            "`{name}` is {value}; it must be from {min} to {max}"
        )));
    }
    Ok(value)
}

/// The `max` of a fetch or poll: 1 to [`MAX_MESSAGES`], default 100.
pub fn max_messages(max: Option<u32>) -> Result<u32, ApiError> {
    in_range("max", max, 100, 1, MAX_MESSAGES)
}

/// The wait of a fetch or poll: `wait_ms` (default `default_ms`) up to [`MAX_WAIT_MS`], then
/// capped at `cap` (half the request timeout).
pub fn wait(wait_ms: Option<u64>, default_ms: u64, cap: Duration) -> Result<Duration, ApiError> {
    let ms = in_range("wait_ms", wait_ms, default_ms, 0, MAX_WAIT_MS)?;
    Ok(Duration::from_millis(ms).min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_refuse_instead_of_clamping() {
        assert_eq!(max_messages(None).unwrap(), 100);
        assert_eq!(max_messages(Some(10_000)).unwrap(), 10_000);
        assert!(max_messages(Some(0)).is_err());
        assert!(max_messages(Some(10_001)).is_err());
        let cap = Duration::from_secs(5);
        assert_eq!(wait(None, 1000, cap).unwrap(), Duration::from_secs(1));
        assert_eq!(wait(Some(30_000), 0, cap).unwrap(), cap);
        assert!(wait(Some(30_001), 0, cap).is_err());
    }
}
