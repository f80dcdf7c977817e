//! What `vigil` prints for people: aligned tables, times in the local zone, sizes, and a
//! progress bar on standard error for downloads.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde_json::Value;

/// A table: a header row and rows of cells, printed with aligned columns.
#[derive(Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text: columns two spaces apart, the last one not padded.
    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().take(n).enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, width) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                l.push_str(c);
                if i + 1 < n {
                    l.extend(std::iter::repeat_n(' ', width - c.chars().count() + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.header);
        for r in &self.rows {
            line(r);
        }
        out
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// A JSON value as a cell: strings bare, null as `-`.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".to_owned(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        other => other.to_string(),
    }
}

/// A time from the API (ISO 8601 text, or seconds or microseconds since the epoch) in the
/// local time zone, to the second: `2026-12-02 14:03:07`.
pub fn time(v: &Value) -> String {
    let ts = match v {
        Value::String(s) => s.parse::<jiff::Timestamp>().ok(),
        Value::Number(n) => n.as_f64().and_then(|f| {
            // Microseconds (SentryShot's log) are past the year 5000 as seconds.
            let secs = if f.abs() > 1e11 { f / 1e6 } else { f };
            jiff::Timestamp::from_microsecond((secs * 1e6) as i64).ok()
        }),
        _ => None,
    };
    match ts {
        Some(t) => t
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        None => cell(v),
    }
}

/// A byte count for people: `512 B`, `3.4 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Seconds for people: `42s`, `3m07s`, `2h05m`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// A progress bar on standard error, drawn only when it is a terminal (scripts see nothing).
pub struct Progress {
    what: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
    tty: bool,
}

impl Progress {
    /// A bar for `what`, of `total` bytes when known.
    pub fn new(what: &str, total: Option<u64>) -> Progress {
        Progress {
            what: what.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            drawn: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// `n` more bytes done; redraws at most ten times a second.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.tty {
            return;
        }
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|d| now.duration_since(d).as_millis() < 100)
        {
            return;
        }
        self.drawn = Some(now);
        self.draw();
    }

    /// The line drawn for the current state.
    pub fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = format!("{}/s", bytes((self.done as f64 / secs) as u64));
        match self.total {
            Some(t) if t > 0 => {
                let frac = (self.done as f64 / t as f64).min(1.0);
                let width = 30;
                let full = (frac * width as f64) as usize;
                format!(
                    "{} [{}{}] {:3.0}% {} of {} {rate}",
                    self.what,
                    "#".repeat(full),
                    "-".repeat(width - full),
                    frac * 100.0,
                    bytes(self.done),
                    bytes(t)
                )
            }
            _ => format!("{} {} {rate}", self.what, bytes(self.done)),
        }
    }

    fn draw(&self) {
        let mut e = std::io::stderr();
        let _ = write!(e, "\r{}\x1b[K", self.line());
        let _ = e.flush();
    }

    /// Draws the final state and ends the line.
    pub fn finish(&mut self) {
        if self.tty {
            self.draw();
            let _ = writeln!(std::io::stderr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&["ID", "NAME"]);
        t.row(vec!["1".into(), "front".into()]);
        t.row(vec!["1234".into(), "back yard".into()]);
        assert_eq!(t.render(), "ID    NAME\n1     front\n1234  back yard\n");
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(duration(42.4), "42s");
        assert_eq!(duration(187.0), "3m07s");
        assert_eq!(duration(7500.0), "2h05m");
    }

    #[test]
    fn cells_show_nothing_as_a_dash() {
        assert_eq!(cell(&Value::Null), "-");
        assert_eq!(cell(&serde_json::json!(["a", "b"])), "a,b");
        assert_eq!(cell(&serde_json::json!(true)), "yes");
        assert_eq!(time(&serde_json::json!("not a time")), "not a time");
    }

    #[test]
    fn progress_shows_the_share_done() {
        let mut p = Progress::new("clip.mp4", Some(200));
        p.tty = false;
        p.add(100);
        assert!(p.line().contains(" 50% "), "{}", p.line());
    }
}
