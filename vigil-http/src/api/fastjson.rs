//! A JSON object writer for the list endpoints' items.
//!
//! serde_json escapes every key and writes each piece through its `Formatter`; for the events
//! list (pages of 50 objects of ~30 fields) that was over a third of a request's CPU. This
//! writer appends keys as they are (they are our own ASCII literals), scans strings once for
//! the bytes JSON must escape and hands only those strings to serde_json, and formats numbers
//! with the same crates serde_json uses, so the output is the same JSON. Each wire type that
//! uses it has a test that its output parses to what its `Serialize` impl produces.

/// A member name as [`Obj`] takes it: `key!("camera")` is `,"camera":` (the comma is left
/// off for an object's first member), written in one copy. Names are our own field names and
/// never need escaping.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":")
    };
}
pub(crate) use key;

/// A float as serde_json writes it (`null` when not finite), formatted once to be written once
/// or more (an event's box and scores appear at the top level and again in Frigate's `data`).
#[derive(Clone, Copy)]
pub(crate) struct Num {
    text: [u8; SMALL],
    len: usize,
}

impl Num {
    #[inline]
    pub(crate) fn new(value: f32) -> Num {
        let mut n = Num {
            text: [0; SMALL],
            len: 0,
        };
        let mut buf = zmij::Buffer::new();
        let t = if value.is_finite() {
            buf.format_finite(value)
        } else {
            "null"
        };
        // An f32's shortest form is at most 15 bytes (`-1.17549435e-38`).
        n.len = t.len().min(SMALL);
        n.text[..n.len].copy_from_slice(&t.as_bytes()[..n.len]);
        n
    }

    #[inline]
    fn put(&self, out: &mut Vec<u8>) {
        put_small(out, &self.text, self.len);
    }
}

/// The room of a short piece of text ([`Num`], [`Digits`]), copied whole (see [`put_small`]).
const SMALL: usize = 24;

/// Appends `text[..len]` by copying all of `text` and cutting the rest off: a copy of a
/// known size is a few register stores, where a copy of a size known only at run time is a
/// call to `memcpy`, and numbers are most of what an event's JSON is made of.
#[inline]
fn put_small<const N: usize>(out: &mut Vec<u8>, text: &[u8; N], len: usize) {
    let at = out.len();
    out.extend_from_slice(text);
    out.truncate(at + len.min(N));
}

/// The decimal digits of an integer, left-aligned.
struct Digits {
    text: [u8; SMALL],
    len: usize,
}

impl Digits {
    #[inline]
    fn new(mut v: u64) -> Digits {
        let len = v.checked_ilog10().map_or(1, |l| l as usize + 1);
        let mut text = [b'0'; SMALL];
        for d in text[..len].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Digits { text, len }
    }

    #[inline]
    fn put(&self, out: &mut Vec<u8>) {
        put_small(out, &self.text, self.len);
    }
}

/// Writes one JSON object's members into a buffer.
pub(crate) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object (`{`) at the end of `out`.
    #[inline]
    pub(crate) fn open(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// Closes the object (`}`).
    #[inline]
    pub(crate) fn close(self) {
        self.out.push(b'}');
    }

    /// Starts a member: `key` is its name as [`key!`] writes it (comma, quoted name, colon).
    #[inline]
    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        debug_assert!(key.starts_with(",\"") && key.ends_with("\":"), "{key:?}");
        // Either way a copy of a length known where this is inlined.
        if self.first {
            self.first = false;
            self.out.extend_from_slice(&key.as_bytes()[1..]);
        } else {
            self.out.extend_from_slice(key.as_bytes());
        }
        self.out
    }

    #[inline]
    pub(crate) fn str(&mut self, key: &str, v: &str) {
        let out = self.key(key);
        string(out, v);
    }

    /// A timestamp's ISO text (nothing in it needs escaping).
    #[inline]
    pub(crate) fn time(&mut self, key: &str, v: vigil_core::Timestamp) {
        let iso = v.iso();
        let out = self.key(key);
        debug_assert!(!needs_escape_bytes(iso.as_bytes()));
        out.push(b'"');
        let (text, len) = iso.padded();
        put_small(out, text, len);
        out.push(b'"');
    }

    #[inline]
    pub(crate) fn opt_time(&mut self, key: &str, v: Option<vigil_core::Timestamp>) {
        match v {
            Some(v) => self.time(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub(crate) fn opt_str(&mut self, key: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(key, v),
            None => self.null(key),
        }
    }

    /// A link made of a fixed start, a number and a fixed end (`/api/events/7/clip.mp4`);
    /// `start` and `end` are our own literals and need no escaping.
    #[inline]
    pub(crate) fn link(&mut self, key: &str, start: &str, n: u64, end: &str) {
        debug_assert!(!needs_escape(start) && !needs_escape(end));
        let out = self.key(key);
        out.push(b'"');
        out.extend_from_slice(start.as_bytes());
        Digits::new(n).put(out);
        out.extend_from_slice(end.as_bytes());
        out.push(b'"');
    }

    /// A number written as a JSON string (our ids).
    #[inline]
    pub(crate) fn u64_str(&mut self, key: &str, v: u64) {
        let out = self.key(key);
        out.push(b'"');
        Digits::new(v).put(out);
        out.push(b'"');
    }

    #[inline]
    pub(crate) fn bool(&mut self, key: &str, v: bool) {
        let out = self.key(key);
        // Two copies of known sizes rather than one of either size.
        if v {
            out.extend_from_slice(b"true");
        } else {
            out.extend_from_slice(b"false");
        }
    }

    #[inline]
    pub(crate) fn null(&mut self, key: &str) {
        self.key(key).extend_from_slice(b"null");
    }

    #[inline]
    pub(crate) fn u64(&mut self, key: &str, v: u64) {
        let out = self.key(key);
        Digits::new(v).put(out);
    }

    #[inline]
    pub(crate) fn opt_u64(&mut self, key: &str, v: Option<u64>) {
        match v {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    #[inline]
    pub(crate) fn opt_f64(&mut self, key: &str, v: Option<f64>) {
        let out = self.key(key);
        match v {
            Some(v) if v.is_finite() => {
                out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes())
            }
            _ => out.extend_from_slice(b"null"),
        }
    }

    #[inline]
    pub(crate) fn strs(&mut self, key: &str, v: &[String]) {
        let out = self.key(key);
        out.push(b'[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, s);
        }
        out.push(b']');
    }

    /// The member named `name` (plain, not from [`key!`]: it is chosen at run time), its value
    /// written by the caller (a JSON value, nothing else).
    #[inline]
    pub(crate) fn raw(&mut self, name: &str) -> &mut Vec<u8> {
        debug_assert!(!needs_escape(name), "{name:?}");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// A number formatted beforehand.
    #[inline]
    pub(crate) fn num(&mut self, key: &str, v: &Num) {
        let out = self.key(key);
        v.put(out);
    }

    /// An array of numbers formatted beforehand.
    #[inline]
    pub(crate) fn nums(&mut self, key: &str, v: &[Num]) {
        let out = self.key(key);
        out.push(b'[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            x.put(out);
        }
        out.push(b']');
    }

    /// A nested object as the member `key`.
    #[inline]
    pub(crate) fn obj(&mut self, key: &str) -> Obj<'_> {
        Obj::open(self.key(key))
    }
}

#[inline]
fn string(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s) {
        // Rare (names and notes with quotes or control characters): serde_json escapes them.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

#[inline]
fn needs_escape(s: &str) -> bool {
    needs_escape_bytes(s.as_bytes())
}

#[inline]
fn needs_escape_bytes(b: &[u8]) -> bool {
    // No early exit: the whole scan is a few vector compares for the short names we write.
    b.iter().fold(false, |any, &c| {
        any | (c < 0x20) | (c == b'"') | (c == b'\\')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_serde_json_reads_back() {
        let mut out = Vec::new();
        let mut o = Obj::open(&mut out);
        o.str(key!("plain"), "front door");
        o.str(key!("quoted"), "say \"hi\"\n\\ \u{1}");
        o.opt_str(key!("none"), None);
        o.link(key!("event_link"), "/api/events/", 1234567, "/clip.mp4");
        o.link(key!("zero"), "/n/", 0, "");
        o.u64(key!("nines"), 9_999_999_999_999_999_999);
        o.u64_str(key!("id"), 7);
        o.time(key!("at"), vigil_core::Timestamp(1_000_000));
        o.opt_time(key!("never"), None);
        o.bool(key!("t"), true);
        o.u64(key!("n"), u64::MAX);
        o.opt_u64(key!("on"), None);
        o.num(key!("f"), &Num::new(0.1));
        o.num(key!("nan"), &Num::new(f32::NAN));
        o.opt_f64(key!("d"), Some(1.5));
        o.nums(key!("v"), &[Num::new(1.0), Num::new(0.25)]);
        o.strs(key!("zones"), &["a".into(), "b\"".into()]);
        o.obj(key!("inner")).close();
        o.raw("dynamic").push(b'1');
        let n = [Num::new(0.5), Num::new(f32::INFINITY)];
        o.nums(key!("nums"), &n);
        o.nums(key!("again"), &n);
        o.num(key!("one"), &n[0]);
        o.close();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "plain": "front door", "quoted": "say \"hi\"\n\\ \u{1}", "none": null,
                "event_link": "/api/events/1234567/clip.mp4", "zero": "/n/0", "nines": 9_999_999_999_999_999_999u64, "id": "7", "at": "1970-01-01T00:00:01.000000Z", "never": null, "t": true,
                "n": u64::MAX, "on": null, "f": 0.1, "nan": null, "d": 1.5,
                "v": [1.0, 0.25], "zones": ["a", "b\""], "inner": {}, "dynamic": 1, "nums": [0.5, null], "again": [0.5, null], "one": 0.5,
            })
        );
        // Floats are written as serde_json writes them.
        assert!(String::from_utf8(out).unwrap().contains("\"f\":0.1,"));
    }
}
