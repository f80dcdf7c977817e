//! Time: one wall-clock type for everything stored, and the clock seam.
//!
//! Every record (event, recording, log line) carries a [`Timestamp`]: microseconds since the Unix
//! epoch, UTC. Microseconds keep keys 8 bytes wide and sortable, are finer than any camera's frame
//! interval, and convert exactly to the 90 kHz media timeline over the spans that matter.
//!
//! Nothing in the pipeline calls `SystemTime::now()` directly: it asks a [`Clocks`], so tests can
//! run on [`SimulatedClocks`].

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A point in time: microseconds since 1970-01-01T00:00:00Z.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The earliest representable time.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// From microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(s: i64) -> Self {
        Timestamp(s.saturating_mul(1_000_000))
    }

    /// From fractional seconds since the epoch, as Frigate's `before`/`after` send them.
    ///
    /// Fails on NaN, infinities and values outside about ±292,000 years.
    pub fn from_secs_f64(s: f64) -> Result<Self> {
        let us = s * 1e6;
        if !us.is_finite() || us >= i64::MAX as f64 || us <= i64::MIN as f64 {
            return Err(Error::invalid(format!("time {s} is out of range")));
        }
        Ok(Timestamp(us.round() as i64))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch, as a float (Frigate's `start_time`).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Parses RFC 3339 / ISO 8601 (`2025-12-23T12:00:00Z`, with any offset), a bare date
    /// (`2025-10-01`, midnight UTC) or a date-time without offset (taken as UTC, as SpectraX
    /// writes it).
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Ok(ts) = s.parse::<jiff::Timestamp>() {
            return Ok(Timestamp(ts.as_microsecond()));
        }
        if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
            if let Ok(z) = dt.to_zoned(jiff::tz::TimeZone::UTC) {
                return Ok(Timestamp(z.timestamp().as_microsecond()));
            }
        }
        if let Ok(d) = s.parse::<jiff::civil::Date>() {
            if let Ok(z) = d.to_zoned(jiff::tz::TimeZone::UTC) {
                return Ok(Timestamp(z.timestamp().as_microsecond()));
            }
        }
        Err(Error::invalid(format!(
            "{s:?} is not an ISO 8601 time (expected e.g. 2025-12-23T12:00:00Z)"
        )))
    }

    /// As a `jiff::Timestamp`, for calendar arithmetic; `None` outside jiff's range.
    pub fn to_jiff(self) -> Option<jiff::Timestamp> {
        jiff::Timestamp::from_microsecond(self.0).ok()
    }

    /// The calendar day of this instant in `tz`.
    pub fn date_in(self, tz: &jiff::tz::TimeZone) -> Option<jiff::civil::Date> {
        self.to_jiff().map(|t| t.to_zoned(tz.clone()).date())
    }

    /// Adds a duration, saturating at the ends of the range.
    pub fn saturating_add(self, d: Duration) -> Self {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(us))
    }

    /// Subtracts a duration, saturating at the ends of the range.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(us))
    }
}

/// ISO 8601 UTC with microseconds, e.g. `2025-12-23T12:00:00.123456Z` (see [`Timestamp::iso`]).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

/// The text of a [`Timestamp`], on the stack.
#[derive(Clone, Copy)]
pub struct Iso {
    buf: [u8; 32],
    len: u8,
}

impl Iso {
    /// The text's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The whole buffer and the text's length in it: a writer may copy the fixed-size buffer
    /// and keep `len` bytes, which is cheaper than a copy of a size known only at run time.
    pub fn padded(&self) -> (&[u8; 32], usize) {
        (&self.buf, usize::from(self.len))
    }
}

impl std::ops::Deref for Iso {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Write for Iso {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let at = usize::from(self.len);
        let end = at + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[at..end].copy_from_slice(s.as_bytes());
        self.len = end as u8;
        Ok(())
    }
}

/// The instants [`Timestamp::iso`] formats itself: from 0000-01-01 to jiff's maximum
/// for microseconds (9999-12-30T22:00:00Z), so that it writes exactly what jiff would.
const FAST_ISO_MIN_US: i64 = -62_167_219_200_000_000;
const FAST_ISO_MAX_US: i64 = 253_402_207_200_000_000;

impl Timestamp {
    /// ISO 8601 UTC with microseconds, e.g. `2025-12-23T12:00:00.123456Z`, without
    /// allocating: the API writes two per event, thousands per second. Years 0–9999 are
    /// formatted here; the rest (and times beyond jiff's range, written `@<micros>us`) by jiff.
    pub fn iso(self) -> Iso {
        let mut out = Iso {
            buf: [0; 32],
            len: 0,
        };
        if (FAST_ISO_MIN_US..=FAST_ISO_MAX_US).contains(&self.0) {
            let secs = self.0.div_euclid(1_000_000);
            let micros = self.0.rem_euclid(1_000_000);
            let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil_from_days(days);
            let b = &mut out.buf;
            // Two digits at a time: every part but the year's first half and the micros'
            // last pair is one pair.
            let mut pair = |at: usize, v: i64| {
                let v = v as usize % 100;
                b[at] = b'0' + (v / 10) as u8;
                b[at + 1] = b'0' + (v % 10) as u8;
            };
            pair(0, y / 100);
            pair(2, y % 100);
            pair(5, m);
            pair(8, d);
            pair(11, sod / 3600);
            pair(14, sod / 60 % 60);
            pair(17, sod % 60);
            pair(20, micros / 10_000);
            pair(22, micros / 100 % 100);
            pair(24, micros % 100);
            for (at, c) in [
                (4, b'-'),
                (7, b'-'),
                (10, b'T'),
                (13, b':'),
                (16, b':'),
                (19, b'.'),
            ] {
                b[at] = c;
            }
            b[26] = b'Z';
            out.len = 27;
            return out;
        }
        // Both forms fit in 32 bytes (`-009999-01-01T00:00:00.000000Z`, `@-9223372036854775808us`).
        let _ = match self.to_jiff() {
            Some(t) => fmt::Write::write_fmt(&mut out, format_args!("{t:.6}")),
            None => fmt::Write::write_fmt(&mut out, format_args!("@{}us", self.0)),
        };
        out
    }
}

/// Year, month, day of `days` since 1970-01-01 in the proleptic Gregorian calendar (the
/// era-based method: 400-year eras of 146,097 days, years starting in March).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Where the pipeline gets the time from.
///
/// Held as `Arc<dyn Clocks>`. Wall time stamps records; monotonic time measures intervals
/// (timeouts, backoff, fps) and never jumps when NTP adjusts the wall clock.
pub trait Clocks: Send + Sync + fmt::Debug + 'static {
    /// The current wall-clock time.
    fn realtime(&self) -> Timestamp;
    /// A monotonic reading in microseconds from an arbitrary origin.
    fn monotonic_us(&self) -> i64;
}

/// The system's clocks.
#[derive(Debug, Clone)]
pub struct RealClocks {
    origin: std::time::Instant,
}

impl Default for RealClocks {
    fn default() -> Self {
        RealClocks {
            origin: std::time::Instant::now(),
        }
    }
}

impl Clocks for RealClocks {
    fn realtime(&self) -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX)),
        }
    }

    fn monotonic_us(&self) -> i64 {
        i64::try_from(self.origin.elapsed().as_micros()).unwrap_or(i64::MAX)
    }
}

/// Clocks that move only when told to, for tests.
#[derive(Debug)]
pub struct SimulatedClocks {
    boot: Timestamp,
    elapsed_us: AtomicI64,
}

impl SimulatedClocks {
    /// Clocks whose wall time starts at `boot`.
    pub fn new(boot: Timestamp) -> Self {
        SimulatedClocks {
            boot,
            elapsed_us: AtomicI64::new(0),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, d: Duration) {
        let us = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        self.elapsed_us.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clocks for SimulatedClocks {
    fn realtime(&self) -> Timestamp {
        Timestamp(self.boot.0 + self.elapsed_us.load(Ordering::SeqCst))
    }

    fn monotonic_us(&self) -> i64 {
        self.elapsed_us.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_fast_range_is_jiffs() {
        let (mut lo, mut hi) = (0i64, i64::MAX / 2);
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            if Timestamp(mid).to_jiff().is_some() {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        assert_eq!(lo, FAST_ISO_MAX_US, "jiff's range changed");
        assert_eq!(
            Timestamp(FAST_ISO_MIN_US).to_jiff().map(|t| t.to_string()),
            Some("0000-01-01T00:00:00Z".to_owned())
        );
    }

    #[test]
    fn iso_is_what_jiff_writes() {
        let jiff = |t: Timestamp| match t.to_jiff() {
            Some(j) => format!("{j:.6}"),
            None => format!("@{}us", t.0),
        };
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut samples = vec![
            0,
            -1,
            1,
            951_782_400_000_000,     // 2000-02-29
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999: past jiff's maximum
            253_402_207_200_999_999, // about jiff's maximum
            FAST_ISO_MAX_US,
            FAST_ISO_MAX_US + 1,
            FAST_ISO_MIN_US,
            FAST_ISO_MIN_US - 1,
            253_402_207_199_999_999,
            253_402_300_800_000_000, // year 10000
            -62_167_219_200_000_000, // 0000-01-01
            -62_167_219_200_000_001,
            i64::MIN,
            i64::MAX,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Spread over jiff's whole range (about ±10,000 years) and a little beyond.
            samples.push((x % 700_000_000_000_000_000) as i64 - 350_000_000_000_000_000);
        }
        for us in samples {
            let t = Timestamp(us);
            assert_eq!(&*t.iso(), jiff(t), "{us}");
        }
    }

    #[test]
    fn parse_forms() {
        let check = |s: &str, want: i64| assert_eq!(Timestamp::parse(s).unwrap().0, want, "{s}");
        check("1970-01-01T00:00:01Z", 1_000_000);
        check("2025-12-23T12:00:00Z", 1_766_491_200_000_000);
        check("2025-12-23T13:00:00+01:00", 1_766_491_200_000_000);
        check("2025-12-23T12:00:00.5", 1_766_491_200_500_000);
        check("2025-12-23", 1_766_448_000_000_000);
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::from_secs_f64(f64::NAN).is_err());
    }

    #[test]
    fn display_round_trips() {
        let t = Timestamp(1_766_491_200_123_456);
        assert_eq!(t.to_string(), "2025-12-23T12:00:00.123456Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn simulated_clocks_advance() {
        let c = SimulatedClocks::new(Timestamp::from_secs(100));
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.realtime(), Timestamp(101_500_000));
        assert_eq!(c.monotonic_us(), 1_500_000);
    }
}
