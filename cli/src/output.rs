//! How commands print: tables (comfy-table, colour only on a TTY), JSON for scripts, and a
//! stdout writer that turns a closed pipe into a clean exit (`rapidmq consume … | head -n 1`).
//!
//! Commands never use `println!` for their output: it panics when the reader has gone away.
//! They write through [`Stdout`], whose errors main recognises with [`is_broken_pipe`].

use std::io::{self, IsTerminal, Write};

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use serde::Serialize;

/// The global `--output` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables (for `consume`: the raw message values, one per line).
    #[default]
    Table,
    /// JSON: one document per command, or one object per line for streams (`consume`,
    /// `publish` receipts).
    Json,
    /// `consume` only: each message value as it is, one per line.
    Raw,
}

/// A buffered, locked stdout. Flush before exiting; every error is an `io::Error`, so a closed
/// pipe can be told apart from real failures.
pub struct Stdout {
    inner: io::BufWriter<io::StdoutLock<'static>>,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            inner: io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()),
        }
    }

    /// Writes one line.
    pub fn line(&mut self, text: impl AsRef<str>) -> io::Result<()> {
        self.inner.write_all(text.as_ref().as_bytes())?;
        self.inner.write_all(b"\n")
    }

    /// Writes bytes followed by a newline.
    pub fn bytes_line(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.inner.write_all(b"\n")
    }

    /// Writes `value` as one line of compact JSON.
    pub fn json_line<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.inner, value).map_err(io::Error::other)?;
        self.inner.write_all(b"\n")
    }

    /// Writes `value` as pretty JSON.
    pub fn json_pretty<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.inner, value).map_err(io::Error::other)?;
        self.inner.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether `err` (anywhere in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Whether stdout is a terminal (tables get borders and colour only then).
pub fn stdout_is_tty() -> bool {
    io::stdout().is_terminal()
}

/// A table with `headers`, styled for a terminal or plain for pipes.
pub fn table<I, S>(headers: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let tty = stdout_is_tty();
    let mut table = Table::new();
    if tty {
        table
            .load_preset(presets::UTF8_HORIZONTAL_ONLY)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        table.load_preset(presets::NOTHING).force_no_tty();
    }
    table.set_header(headers.into_iter().map(|h| {
        let cell = Cell::new(h.into());
        if tty {
            cell.add_attribute(Attribute::Bold).fg(Color::Cyan)
        } else {
            cell
        }
    }));
    table
}

/// A two-column key/value table, for `describe` and `status`.
pub fn properties<'a>(rows: impl IntoIterator<Item = (&'a str, String)>) -> Table {
    let tty = stdout_is_tty();
    let mut table = Table::new();
    if tty {
        table.load_preset(presets::NOTHING);
    } else {
        table.load_preset(presets::NOTHING).force_no_tty();
    }
    for (key, value) in rows {
        let key = Cell::new(key);
        let key = if tty {
            key.add_attribute(Attribute::Bold)
        } else {
            key
        };
        table.add_row(vec![key, Cell::new(value)]);
    }
    table
}

/// Writes a table (trailing spaces of plain tables trimmed).
pub fn print_table(out: &mut Stdout, table: &Table) -> io::Result<()> {
    for line in table.lines() {
        out.line(line.trim_end())?;
    }
    Ok(())
}

/// `1234567` → `1.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Milliseconds → `1d 2h`, `5m 3s`, `250ms`.
pub fn human_millis(ms: u64) -> String {
    let (d, h, m, s) = (
        ms / 86_400_000,
        ms / 3_600_000 % 24,
        ms / 60_000 % 60,
        ms / 1000 % 60,
    );
    match (d, h, m, s) {
        (0, 0, 0, 0) => format!("{ms}ms"),
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, s) => format!("{m}m {s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h {m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d {h}h"),
    }
}

/// Ms since the epoch → `2024-05-01T12:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Howard Hinnant's inverse of days-from-civil.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units_read_naturally() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_millis(250), "250ms");
        assert_eq!(human_millis(61_000), "1m 1s");
        assert_eq!(human_millis(90_000_000), "1d 1h");
        assert_eq!(human_millis(604_800_000), "7d");
    }

    #[test]
    fn rfc3339_round_trips_a_known_instant() {
        assert_eq!(rfc3339(1_700_000_000_500), "2023-11-14T22:13:20.500Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
