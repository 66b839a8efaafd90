//! Parsers for the human-friendly values the command line accepts: durations (`500ms`, `30s`,
//! `7d`), byte sizes (`64KiB`, `1GB`), start positions (`earliest`, `latest`, an offset, a
//! timestamp) and `K=V` headers. Each is a `FromStr` type so clap reports bad values with usage.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration written as a number and a unit: `250ms`, `30s`, `5m`, `2h`, `7d`. A bare number is
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 30s, 5m, 2h, 7d)"))?;
        let seconds = match unit.trim() {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86_400.0,
            other => return Err(format!("unknown duration unit `{other}` (ms, s, m, h, d)")),
        };
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(format!("`{s}` is not a valid duration"));
        }
        Ok(HumanDuration(Duration::from_secs_f64(seconds)))
    }
}

impl HumanDuration {
    /// Whole milliseconds, saturating.
    pub fn as_millis_u64(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A byte size: `1048576`, `64KiB`, `10MB`, `1GiB` (KB/MB/GB are powers of 1000, KiB/MiB/GiB of
/// 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("`{s}` is not a size (e.g. 1048576, 64KiB, 10MB, 1GiB)"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            "t" | "tb" => 1_000_000_000_000,
            "tib" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit `{other}` (B, KB, KiB, MB, MiB, GB, GiB)"
                ));
            }
        };
        value
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

/// Where a subscription starts or seeks to.
///
/// `earliest`, `latest`, an offset (`42`), a timestamp in ms since the epoch (`@1700000000000`),
/// an RFC 3339 UTC time (`2024-05-01T12:00:00Z`), or a time relative to now (`-10m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position(pub rapidmq::StartPosition);

impl FromStr for Position {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use rapidmq::StartPosition::*;
        let s = s.trim();
        let position = match s {
            "earliest" | "beginning" | "first" => Earliest,
            "latest" | "end" | "now" => Latest,
            _ if s.starts_with('@') => Timestamp(
                s[1..]
                    .parse()
                    .map_err(|_| format!("`{s}`: expected @<ms since the epoch>"))?,
            ),
            _ if s.starts_with('-') => {
                let ago: HumanDuration = s[1..].parse()?;
                Timestamp(now_ms().saturating_sub(ago.as_millis_u64() as i64))
            }
            _ if s.contains('T') => Timestamp(parse_rfc3339_utc(s)?),
            _ => Offset(s.parse().map_err(|_| {
                format!(
                    "`{s}` is not a position: use earliest, latest, an offset, @<epoch ms>, \
                     an RFC 3339 time (2024-05-01T12:00:00Z) or -<duration> (e.g. -10m)"
                )
            })?),
        };
        Ok(Position(position))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            rapidmq::StartPosition::Earliest => f.write_str("earliest"),
            rapidmq::StartPosition::Latest => f.write_str("latest"),
            rapidmq::StartPosition::Offset(o) => write!(f, "{o}"),
            rapidmq::StartPosition::Timestamp(t) => write!(f, "@{t}"),
        }
    }
}

/// One `K=V` header; the value is taken as UTF-8 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderArg {
    pub key: String,
    pub value: String,
}

impl FromStr for HeaderArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok(HeaderArg {
                key: key.to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("`{s}` is not a header: expected KEY=VALUE")),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only) to ms since the epoch.
fn parse_rfc3339_utc(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}`: expected an RFC 3339 UTC time like 2024-05-01T12:00:00Z");
    let body = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix('z'))
        .ok_or_else(bad)?;
    let (date, time) = body.split_once(['T', 't']).ok_or_else(bad)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (year, month, day) = (
        d.next().ok_or_else(bad)??,
        d.next().ok_or_else(bad)??,
        d.next().ok_or_else(bad)??,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().map_err(|_| bad()));
    let (hour, minute, second) = (
        t.next().ok_or_else(bad)??,
        t.next().ok_or_else(bad)??,
        t.next().ok_or_else(bad)??,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err(bad());
    }
    let millis = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse::<i64>().map_err(|_| bad())?
    };
    let days = days_from_civil(year, month, day);
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapidmq::StartPosition;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        let ms = |s: &str| s.parse::<HumanDuration>().map(|d| d.as_millis_u64());
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("2"), Ok(2_000));
        assert_eq!(ms("5m"), Ok(300_000));
        assert_eq!(ms("1.5h"), Ok(5_400_000));
        assert_eq!(ms("7d"), Ok(604_800_000));
        assert!(ms("7 weeks").is_err());
        assert!(ms("soon").is_err());
    }

    #[test]
    fn sizes_distinguish_decimal_and_binary_units() {
        let b = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(b("100"), Ok(100));
        assert_eq!(b("64KiB"), Ok(65_536));
        assert_eq!(b("10MB"), Ok(10_000_000));
        assert_eq!(b("1GiB"), Ok(1 << 30));
        assert!(b("1XB").is_err());
    }

    #[test]
    fn positions_cover_every_form() {
        let p = |s: &str| s.parse::<Position>().map(|p| p.0);
        assert_eq!(p("earliest"), Ok(StartPosition::Earliest));
        assert_eq!(p("latest"), Ok(StartPosition::Latest));
        assert_eq!(p("42"), Ok(StartPosition::Offset(42)));
        assert_eq!(
            p("@1700000000000"),
            Ok(StartPosition::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            p("2023-11-14T22:13:20Z"),
            Ok(StartPosition::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            p("2023-11-14T22:13:20.5Z"),
            Ok(StartPosition::Timestamp(1_700_000_000_500))
        );
        assert!(matches!(p("-10m"), Ok(StartPosition::Timestamp(t)) if t < now_ms()));
        assert!(p("yesterday").is_err());
    }

    #[test]
    fn headers_need_a_key_and_an_equals_sign() {
        assert_eq!(
            "trace=abc=1".parse::<HeaderArg>(),
            Ok(HeaderArg {
                key: "trace".into(),
                value: "abc=1".into()
            })
        );
        assert!("novalue".parse::<HeaderArg>().is_err());
        assert!("=x".parse::<HeaderArg>().is_err());
    }
}
