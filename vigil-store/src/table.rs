//! The indexed-table engine: one mechanism behind events, detections, recordings, snapshots,
//! timelapse frames, audit and log entries.
//!
//! A table is three LMDB databases:
//! - `rows`: id (u64 big-endian) → postcard-encoded record;
//! - `idx`: secondary index keys → nothing. Every key ends in `time(8) ‖ id(8)` so that a range
//!   scan inside one prefix walks in time order:
//!   - `[TAG_TIME] t id` — every row;
//!   - `[TAG_SCORE] part(4) score(4) t id`, `[TAG_DURATION] part(4) duration(8) t id` — sort
//!     orders, partitioned by the row's time (6-hour slices) so that rows arriving in time
//!     order are written into one small, hot part of the index, not all over it;
//!   - `[dim] value 0x00 t id` — one per *term* of the row (camera, label, zone, word...).
//! - `agg`: counters → four i64s: `[0x00]` (row count), `[0x00] dim value` (rows per term, used
//!   by the planner and by count aggregates) and table-specific buckets (`0x80..`).
//!
//! Writes diff the old row against the new one, so index keys and counters stay exact under
//! updates and deletes. Counter changes are summed in memory per transaction and written once
//! per key, which keeps batched inserts fast.
//!
//! A query is planned by picking, among the access paths its filter allows (the time index, one
//! term dimension, or a composite of two), the one whose counters say it touches the fewest rows;
//! the remaining predicates are checked on the rows read. See `docs/design/storage.md`.

use std::cell::Cell;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::marker::PhantomData;
use std::ops::Bound;

use heed::types::{Bytes, Unit, U64};
use heed::{byteorder::BE, Database, RoTxn, RwTxn};
use serde::{de::DeserializeOwned, Serialize};
use vigil_core::{Order, Page, PageRequest, SortBy, TimeRange};

use crate::error::{Error, Result};

pub(crate) const TAG_TIME: u8 = 0x01;
pub(crate) const TAG_SCORE: u8 = 0x02;
pub(crate) const TAG_DURATION: u8 = 0x03;
/// Prefix of the row counters in `agg`.
const AGG_COUNT: u8 = 0x00;
/// Number of i64 values in each `agg` entry.
pub(crate) const AGG_WIDTH: usize = 4;
/// Separates the parts of a composite term value; term values never contain it (or 0x00).
const COMPOSITE_SEP: char = '\u{1}';
/// Width of one partition of the score and duration indexes. Narrower partitions make bulk
/// inserts touch fewer pages; wider ones make an all-time score sort merge fewer scans (a year
/// is 1,460 of them). docs/benchmarks.md has both sides measured.
const SORT_PARTITION_US: i64 = 6 * 3_600_000_000;

pub(crate) type Rows = Database<U64<BE>, Bytes>;
pub(crate) type Idx = Database<Bytes, Unit>;
pub(crate) type Agg = Database<Bytes, Bytes>;
pub(crate) type AggValue = [i64; AGG_WIDTH];

/// A record kept in an indexed table.
pub(crate) trait Row: Serialize + DeserializeOwned + Send + 'static {
    /// Table name, used in database names and messages.
    const NAME: &'static str;
    /// Composite dimensions: `(tag, dim_a, dim_b)` indexes every pair of values of a and b.
    const COMPOSITES: &'static [(u8, u8, u8)] = &[];
    /// Dimensions indexed but not counted (unique values such as paths).
    const UNCOUNTED: &'static [u8] = &[];
    /// Whether `SortBy::Score` / `SortBy::Duration` are served.
    const SORTS: &'static [SortBy] = &[SortBy::Time];

    fn id(&self) -> u64;
    fn time_us(&self) -> i64;
    fn score(&self) -> Option<f32> {
        None
    }
    fn duration_us(&self) -> Option<i64> {
        None
    }
    /// The row's terms: `(dimension tag 0x10..=0x7f, value)`.
    fn terms(&self, out: &mut Vec<(u8, String)>);
    /// Table-specific counters: `(key starting with a byte >= 0x80, values)`.
    fn aggregates(&self, _out: &mut Vec<(Vec<u8>, AggValue)>) {}
}

/// A filter reduced to what the engine understands.
#[derive(Debug, Default, Clone)]
pub(crate) struct Plan {
    /// Every entry must match; within an entry any value may match.
    pub eqs: Vec<(u8, Vec<String>)>,
    pub time: TimeRange,
    pub min_score: Option<f32>,
}

impl Plan {
    pub(crate) fn eq(&mut self, dim: u8, values: impl IntoIterator<Item = String>) -> &mut Self {
        let v: Vec<String> = values.into_iter().collect();
        if !v.is_empty() {
            self.eqs.push((dim, v));
        }
        self
    }

    pub(crate) fn eq_opt(&mut self, dim: u8, value: Option<String>) -> &mut Self {
        self.eq(dim, value)
    }

    fn validate(&self) -> Result<()> {
        for (_, vs) in &self.eqs {
            for v in vs {
                check_term(v)?;
            }
        }
        if let Some(s) = self.min_score {
            if !s.is_finite() {
                return Err(Error::Invalid(format!("min score {s} is not a number")));
            }
        }
        Ok(())
    }

    /// A hash of the filter, carried in cursors so a cursor is only used with its own query.
    fn fingerprint(&self, table: &str) -> u64 {
        let mut h = Fnv::new();
        h.write(table.as_bytes());
        let mut eqs = self.eqs.clone();
        for (_, vs) in &mut eqs {
            vs.sort();
        }
        eqs.sort();
        for (d, vs) in &eqs {
            h.write(&[0xff, *d]);
            for v in vs {
                h.write(v.as_bytes());
                h.write(&[0]);
            }
        }
        h.write(&self.time.after.map_or(i64::MIN, |t| t.0).to_be_bytes());
        h.write(&self.time.before.map_or(i64::MAX, |t| t.0).to_be_bytes());
        h.write(&self.min_score.map_or(u32::MAX, f32::to_bits).to_be_bytes());
        h.0
    }
}

struct Fnv(u64);
impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn check_term(v: &str) -> Result<()> {
    if v.contains(['\0', COMPOSITE_SEP]) || v.len() > 255 {
        return Err(Error::Invalid(format!(
            "value {v:?} is longer than 255 bytes or has control characters"
        )));
    }
    Ok(())
}

/// The sort-index partition (6-hour slice) of a row time, encoded to sort in time order.
fn enc_partition(t: i64) -> [u8; 4] {
    let n = t.div_euclid(SORT_PARTITION_US);
    // Partitions of i64 microseconds fit in i32.
    let n = i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX });
    ((n as u32) ^ 0x8000_0000).to_be_bytes()
}

pub(crate) fn enc_time(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn dec_time(b: [u8; 8]) -> i64 {
    (u64::from_be_bytes(b) ^ (1 << 63)) as i64
}

fn enc_score(s: f32) -> u32 {
    // Non-negative finite floats order like their bit patterns.
    if s.is_nan() || s <= 0.0 {
        0
    } else {
        s.to_bits()
    }
}

/// Position of a row in a sorted walk: (sort key, time, id), compared in that order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    k: u64,
    t: u64,
    id: u64,
}

impl Pos {
    fn of_key(key: &[u8]) -> Option<(Pos, usize)> {
        let n = key.len();
        if n < 17 {
            return None;
        }
        let t = u64::from_be_bytes(key[n - 16..n - 8].try_into().ok()?);
        let id = u64::from_be_bytes(key[n - 8..].try_into().ok()?);
        Some((Pos { k: 0, t, id }, n - 16))
    }
}

/// How the sort key of a path is laid out between its prefix and `t id`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum KeyKind {
    /// No sort key: the prefix is followed by time and id.
    Time,
    /// 4-byte score.
    Score,
    /// 8-byte duration.
    Duration,
}

impl KeyKind {
    fn len(self) -> usize {
        match self {
            KeyKind::Time => 0,
            KeyKind::Score => 4,
            KeyKind::Duration => 8,
        }
    }
}

/// A set of index prefixes walked together, merged in order.
struct Path {
    prefixes: Vec<Vec<u8>>,
    kind: KeyKind,
    cost: u64,
    /// The eq entries this path enforces by itself (indexes into `Plan::eqs`).
    covers: Vec<usize>,
}

/// A typed handle to one table's databases.
pub(crate) struct Table<R> {
    pub(crate) rows: Rows,
    pub(crate) idx: Idx,
    pub(crate) agg: Agg,
    /// The table's number, which keys its counter changes in [`Deltas`].
    no: u8,
    /// Score/duration sorts of at most this many candidate rows are done in memory.
    in_memory_sort_max: u64,
    _row: PhantomData<fn() -> R>,
}

impl<R> Clone for Table<R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Table<R> {}

/// Counter changes of one write transaction, summed per key before they are written.
#[derive(Default)]
pub(crate) struct Deltas(HashMap<(u8, Vec<u8>), AggValue>);

impl Deltas {
    fn add(&mut self, table: u8, key: Vec<u8>, v: &AggValue, sign: i64) {
        let e = self.0.entry((table, key)).or_insert([0; AGG_WIDTH]);
        for (a, b) in e.iter_mut().zip(v) {
            *a += sign * b;
        }
    }

    /// Writes the summed changes into their databases.
    /// `dbs[n]` is the counter database of the table numbered `n`.
    pub(crate) fn flush(self, wtxn: &mut RwTxn, dbs: &[Agg]) -> Result<()> {
        for ((table, key), delta) in self.0 {
            if delta.iter().all(|d| *d == 0) {
                continue;
            }
            let db = *dbs
                .get(usize::from(table))
                .ok_or_else(|| Error::Invalid(format!("no counter database {table}")))?;
            let mut cur = match db.get(wtxn, &key).map_err(Error::lmdb("read counter"))? {
                Some(b) => decode_agg(b),
                None => [0; AGG_WIDTH],
            };
            for (a, d) in cur.iter_mut().zip(delta) {
                *a += d;
            }
            if cur.iter().all(|c| *c == 0) {
                db.delete(wtxn, &key)
                    .map_err(Error::lmdb("delete counter"))?;
            } else {
                db.put(wtxn, &key, &encode_agg(&cur))
                    .map_err(Error::lmdb("write counter"))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn decode_agg(b: &[u8]) -> AggValue {
    let mut v = [0; AGG_WIDTH];
    for (i, c) in b.chunks_exact(8).take(AGG_WIDTH).enumerate() {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        v[i] = i64::from_be_bytes(a);
    }
    v
}

fn encode_agg(v: &AggValue) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

pub(crate) fn encode<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|source| Error::Codec {
        what: what.to_owned(),
        source,
    })
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|source| Error::Codec {
        what: what.to_owned(),
        source,
    })
}

fn term_prefix(dim: u8, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 2);
    k.push(dim);
    k.extend_from_slice(value.as_bytes());
    k.push(0);
    k
}

fn count_key(dim: u8, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(value.len() + 2);
    k.push(AGG_COUNT);
    k.push(dim);
    k.extend_from_slice(value.as_bytes());
    k
}

impl<R: Row> Table<R> {
    pub(crate) fn create(
        env: &heed::Env,
        wtxn: &mut RwTxn,
        no: u8,
        in_memory_sort_max: u64,
    ) -> Result<Self> {
        let name = |s: &str| format!("{}.{s}", R::NAME);
        Ok(Table {
            rows: env
                .create_database(wtxn, Some(&name("rows")))
                .map_err(Error::lmdb("create database"))?,
            idx: env
                .create_database(wtxn, Some(&name("idx")))
                .map_err(Error::lmdb("create database"))?,
            agg: env
                .create_database(wtxn, Some(&name("agg")))
                .map_err(Error::lmdb("create database"))?,
            no,
            in_memory_sort_max,
            _row: PhantomData,
        })
    }

    fn all_terms(row: &R) -> Vec<(u8, String)> {
        let mut t = Vec::new();
        row.terms(&mut t);
        t.sort();
        t.dedup();
        for &(tag, a, b) in R::COMPOSITES {
            let av: Vec<&String> = t.iter().filter(|(d, _)| *d == a).map(|(_, v)| v).collect();
            let bv: Vec<&String> = t.iter().filter(|(d, _)| *d == b).map(|(_, v)| v).collect();
            let mut extra = Vec::new();
            for x in &av {
                for y in &bv {
                    extra.push((tag, format!("{x}{COMPOSITE_SEP}{y}")));
                }
            }
            t.extend(extra);
        }
        t
    }

    fn index_keys(row: &R, terms: &[(u8, String)]) -> Vec<Vec<u8>> {
        let tail: Vec<u8> = enc_time(row.time_us())
            .into_iter()
            .chain(row.id().to_be_bytes())
            .collect();
        let mut keys = Vec::with_capacity(terms.len() + 3);
        let mut k = vec![TAG_TIME];
        k.extend_from_slice(&tail);
        keys.push(k);
        if let Some(s) = row.score() {
            let mut k = vec![TAG_SCORE];
            k.extend_from_slice(&enc_partition(row.time_us()));
            k.extend_from_slice(&enc_score(s).to_be_bytes());
            k.extend_from_slice(&tail);
            keys.push(k);
        }
        if let Some(d) = row.duration_us() {
            let mut k = vec![TAG_DURATION];
            k.extend_from_slice(&enc_partition(row.time_us()));
            k.extend_from_slice(&(d.max(0) as u64).to_be_bytes());
            k.extend_from_slice(&tail);
            keys.push(k);
        }
        for (dim, v) in terms {
            let mut k = term_prefix(*dim, v);
            k.extend_from_slice(&tail);
            keys.push(k);
        }
        keys.sort();
        keys
    }

    fn counters(row: &R, terms: &[(u8, String)]) -> Vec<(Vec<u8>, AggValue)> {
        let one = [1, 0, 0, 0];
        let mut out = vec![(vec![AGG_COUNT], one)];
        for (dim, v) in terms {
            if !R::UNCOUNTED.contains(dim) {
                out.push((count_key(*dim, v), one));
            }
        }
        row.aggregates(&mut out);
        out
    }

    pub(crate) fn get(&self, rtxn: &RoTxn, id: u64) -> Result<Option<R>> {
        match self.rows.get(rtxn, &id).map_err(Error::lmdb("read row"))? {
            Some(b) => Ok(Some(decode(R::NAME, b)?)),
            None => Ok(None),
        }
    }

    /// Inserts or replaces `row`, keeping indexes and counters exact.
    pub(crate) fn put(&self, wtxn: &mut RwTxn, row: &R, deltas: &mut Deltas) -> Result<()> {
        let mut base = Vec::new();
        row.terms(&mut base);
        for (_, v) in &base {
            check_term(v)?;
        }
        let new_terms = Self::all_terms(row);
        let old = self.get(wtxn, row.id())?;
        let new_keys = Self::index_keys(row, &new_terms);
        let old_keys = match &old {
            Some(o) => {
                let t = Self::all_terms(o);
                for (k, v) in Self::counters(o, &t) {
                    deltas.add(self.no, k, &v, -1);
                }
                Self::index_keys(o, &t)
            }
            None => Vec::new(),
        };
        for k in &old_keys {
            if new_keys.binary_search(k).is_err() {
                self.idx
                    .delete(wtxn, k)
                    .map_err(Error::lmdb("delete index"))?;
            }
        }
        for k in &new_keys {
            if old_keys.binary_search(k).is_err() {
                self.idx
                    .put(wtxn, k, &())
                    .map_err(Error::lmdb("write index"))?;
            }
        }
        for (k, v) in Self::counters(row, &new_terms) {
            deltas.add(self.no, k, &v, 1);
        }
        let bytes = encode(R::NAME, row)?;
        self.rows
            .put(wtxn, &row.id(), &bytes)
            .map_err(Error::lmdb("write row"))
    }

    /// Removes the row with `id`, if any.
    pub(crate) fn delete(&self, wtxn: &mut RwTxn, id: u64, deltas: &mut Deltas) -> Result<bool> {
        let Some(old) = self.get(wtxn, id)? else {
            return Ok(false);
        };
        let t = Self::all_terms(&old);
        for k in Self::index_keys(&old, &t) {
            self.idx
                .delete(wtxn, &k)
                .map_err(Error::lmdb("delete index"))?;
        }
        for (k, v) in Self::counters(&old, &t) {
            deltas.add(self.no, k, &v, -1);
        }
        self.rows
            .delete(wtxn, &id)
            .map_err(Error::lmdb("delete row"))?;
        Ok(true)
    }

    /// Ids of rows with time before `t`, oldest first, at most `limit`.
    pub(crate) fn ids_before(&self, rtxn: &RoTxn, t: i64, limit: usize) -> Result<Vec<u64>> {
        let lo = [TAG_TIME];
        let mut hi = vec![TAG_TIME];
        hi.extend_from_slice(&enc_time(t));
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        let mut out = Vec::new();
        for item in self.idx.range(rtxn, &range).map_err(Error::lmdb("scan"))? {
            let (k, ()) = item.map_err(Error::lmdb("scan"))?;
            if let Some((p, _)) = Pos::of_key(k) {
                out.push(p.id);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The value of a counter.
    pub(crate) fn agg_get(&self, rtxn: &RoTxn, key: &[u8]) -> Result<AggValue> {
        Ok(self
            .agg
            .get(rtxn, key)
            .map_err(Error::lmdb("read counter"))?
            .map(decode_agg)
            .unwrap_or([0; AGG_WIDTH]))
    }

    /// Rows in the table.
    pub(crate) fn len(&self, rtxn: &RoTxn) -> Result<u64> {
        Ok(self.agg_get(rtxn, &[AGG_COUNT])?[0].max(0) as u64)
    }

    /// Rows per value of dimension `dim`.
    pub(crate) fn term_counts(&self, rtxn: &RoTxn, dim: u8) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        self.agg_scan(rtxn, &[AGG_COUNT, dim], |k, v| {
            out.insert(String::from_utf8_lossy(k).into_owned(), v[0].max(0) as u64);
        })?;
        Ok(out)
    }

    /// Calls `f(key without prefix, value)` for every counter under `prefix`.
    pub(crate) fn agg_scan(
        &self,
        rtxn: &RoTxn,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], AggValue),
    ) -> Result<()> {
        for item in self
            .agg
            .prefix_iter(rtxn, prefix)
            .map_err(Error::lmdb("scan counters"))?
        {
            let (k, v) = item.map_err(Error::lmdb("scan counters"))?;
            f(&k[prefix.len()..], decode_agg(v));
        }
        Ok(())
    }

    /// The earliest and latest row time under a term (or the whole table for `None`).
    pub(crate) fn time_bounds(
        &self,
        rtxn: &RoTxn,
        term: Option<(u8, &str)>,
    ) -> Result<Option<(i64, i64)>> {
        let prefix = match term {
            Some((d, v)) => term_prefix(d, v),
            None => vec![TAG_TIME],
        };
        let first = self
            .idx
            .prefix_iter(rtxn, &prefix)
            .map_err(Error::lmdb("scan"))?
            .next()
            .transpose()
            .map_err(Error::lmdb("scan"))?
            .and_then(|(k, _)| Pos::of_key(k));
        let last = self
            .idx
            .rev_prefix_iter(rtxn, &prefix)
            .map_err(Error::lmdb("scan"))?
            .next()
            .transpose()
            .map_err(Error::lmdb("scan"))?
            .and_then(|(k, _)| Pos::of_key(k));
        Ok(match (first, last) {
            (Some((a, _)), Some((b, _))) => {
                Some((dec_time(a.t.to_be_bytes()), dec_time(b.t.to_be_bytes())))
            }
            _ => None,
        })
    }

    /// The first row id under a term, for unique lookups (e.g. a recording's path).
    pub(crate) fn find_one(&self, rtxn: &RoTxn, dim: u8, value: &str) -> Result<Option<R>> {
        check_term(value)?;
        let prefix = term_prefix(dim, value);
        let hit = self
            .idx
            .prefix_iter(rtxn, &prefix)
            .map_err(Error::lmdb("scan"))?
            .next()
            .transpose()
            .map_err(Error::lmdb("scan"))?
            .and_then(|(k, _)| Pos::of_key(k));
        match hit {
            Some((p, _)) => self.get(rtxn, p.id),
            None => Ok(None),
        }
    }

    fn matches(plan: &Plan, row: &R, terms: &[(u8, String)]) -> bool {
        if !plan.time.contains(vigil_core::Timestamp(row.time_us())) {
            return false;
        }
        if let Some(min) = plan.min_score {
            if row.score().unwrap_or(0.0) < min {
                return false;
            }
        }
        plan.eqs
            .iter()
            .all(|(d, vs)| terms.iter().any(|(td, tv)| td == d && vs.contains(tv)))
    }

    fn sort_pos(row: &R, sort: SortBy) -> Pos {
        let k = match sort {
            SortBy::Time => 0,
            SortBy::Score => u64::from(enc_score(row.score().unwrap_or(0.0))),
            SortBy::Duration => row.duration_us().unwrap_or(0).max(0) as u64,
        };
        Pos {
            k,
            t: u64::from_be_bytes(enc_time(row.time_us())),
            id: row.id(),
        }
    }

    fn count_of(&self, rtxn: &RoTxn, dim: u8, v: &str) -> Result<u64> {
        Ok(self.agg_get(rtxn, &count_key(dim, v))?[0].max(0) as u64)
    }

    /// The cheapest path among the time index and the term indexes the plan allows.
    fn best_term_path(&self, rtxn: &RoTxn, plan: &Plan) -> Result<Path> {
        let mut best = Path {
            prefixes: vec![vec![TAG_TIME]],
            kind: KeyKind::Time,
            cost: self.len(rtxn)?,
            covers: Vec::new(),
        };
        let mut consider = |p: Path| {
            if p.cost < best.cost || (p.cost == best.cost && p.covers.len() > best.covers.len()) {
                best = p;
            }
        };
        for (i, (dim, vs)) in plan.eqs.iter().enumerate() {
            if R::UNCOUNTED.contains(dim) {
                // Unique values: a cost of one per value is close enough.
                consider(Path {
                    prefixes: vs.iter().map(|v| term_prefix(*dim, v)).collect(),
                    kind: KeyKind::Time,
                    cost: vs.len() as u64,
                    covers: vec![i],
                });
                continue;
            }
            let mut cost = 0;
            for v in vs {
                cost += self.count_of(rtxn, *dim, v)?;
            }
            consider(Path {
                prefixes: vs.iter().map(|v| term_prefix(*dim, v)).collect(),
                kind: KeyKind::Time,
                cost,
                covers: vec![i],
            });
        }
        for &(tag, a, b) in R::COMPOSITES {
            let ia = plan.eqs.iter().position(|(d, _)| *d == a);
            let ib = plan.eqs.iter().position(|(d, _)| *d == b);
            if let (Some(ia), Some(ib)) = (ia, ib) {
                let mut prefixes = Vec::new();
                let mut cost = 0;
                for x in &plan.eqs[ia].1 {
                    for y in &plan.eqs[ib].1 {
                        let v = format!("{x}{COMPOSITE_SEP}{y}");
                        cost += self.count_of(rtxn, tag, &v)?;
                        prefixes.push(term_prefix(tag, &v));
                    }
                }
                consider(Path {
                    prefixes,
                    kind: KeyKind::Time,
                    cost,
                    covers: vec![ia, ib],
                });
            }
        }
        Ok(best)
    }

    /// Answers a list query, or `None` when it would visit more index entries than `budget`.
    pub(crate) fn query(
        &self,
        rtxn: &RoTxn,
        plan: &Plan,
        sort: SortBy,
        order: Order,
        page: &PageRequest,
        budget: &Budget,
    ) -> Result<Option<Page<R>>> {
        plan.validate()?;
        page.validate()
            .map_err(|e| Error::Invalid(e.message().to_owned()))?;
        if !R::SORTS.contains(&sort) {
            return Err(Error::Invalid(format!(
                "{} cannot be sorted by {sort:?}",
                R::NAME
            )));
        }
        let fp = plan.fingerprint(R::NAME);
        let after = match &page.cursor {
            Some(c) => Some(decode_cursor(c, sort, order, fp)?),
            None => None,
        };
        let limit = page.limit as usize;
        let term_path = self.best_term_path(rtxn, plan)?;
        let covered =
            plan.min_score.is_none() && (0..plan.eqs.len()).all(|i| term_path.covers.contains(&i));

        let (items, last, has_more) = if sort == SortBy::Time {
            self.walk(
                rtxn,
                plan,
                &term_path,
                order,
                after,
                page.offset,
                limit,
                covered,
                budget,
            )?
        } else if term_path.cost <= self.in_memory_sort_max {
            self.sort_in_memory(
                rtxn,
                plan,
                &term_path,
                sort,
                order,
                after,
                page.offset,
                limit,
                budget,
            )?
        } else {
            let path = self.sort_path(rtxn, plan, sort)?;
            self.walk(
                rtxn,
                plan,
                &path,
                order,
                after,
                page.offset,
                limit,
                false,
                budget,
            )?
        };
        let next_cursor = if has_more {
            last.map(|p| encode_cursor(p, sort, order, fp))
        } else {
            None
        };
        let total = if page.with_total {
            Some(self.count(rtxn, plan, &term_path, covered, budget)?)
        } else {
            None
        };
        if budget.exhausted() {
            return Ok(None);
        }
        Ok(Some(Page {
            items,
            next_cursor,
            has_more,
            total,
        }))
    }

    /// The partitions of the score or duration index that can hold rows in the plan's time range.
    fn sort_path(&self, rtxn: &RoTxn, plan: &Plan, sort: SortBy) -> Result<Path> {
        let (tag, kind) = match sort {
            SortBy::Score => (TAG_SCORE, KeyKind::Score),
            _ => (TAG_DURATION, KeyKind::Duration),
        };
        let mut prefixes = Vec::new();
        if let Some((first, last)) = self.time_bounds(rtxn, None)? {
            let lo = plan.time.after.map_or(first, |a| a.0.max(first));
            // `before` is exclusive; a row at `last` must still be reachable.
            let hi = plan
                .time
                .before
                .map_or(last, |b| b.0.saturating_sub(1).min(last));
            if lo <= hi {
                let mut part = lo.div_euclid(SORT_PARTITION_US);
                let end = hi.div_euclid(SORT_PARTITION_US);
                while part <= end {
                    let mut p = vec![tag];
                    p.extend_from_slice(&enc_partition(part.saturating_mul(SORT_PARTITION_US)));
                    prefixes.push(p);
                    part += 1;
                }
            }
        }
        Ok(Path {
            prefixes,
            kind,
            cost: 0,
            covers: Vec::new(),
        })
    }

    /// Counts the rows matching `plan`.
    fn count(
        &self,
        rtxn: &RoTxn,
        plan: &Plan,
        path: &Path,
        covered: bool,
        budget: &Budget,
    ) -> Result<u64> {
        let untimed = plan.time.after.is_none() && plan.time.before.is_none();
        if covered && untimed && path.prefixes.len() == 1 && path.kind == KeyKind::Time {
            // A single counted prefix: the counter is exact.
            let p = &path.prefixes[0];
            if p[..] == [TAG_TIME] {
                return self.len(rtxn);
            }
            if !R::UNCOUNTED.contains(&p[0]) {
                let v = String::from_utf8_lossy(&p[1..p.len() - 1]).into_owned();
                return self.count_of(rtxn, p[0], &v);
            }
        }
        let mut n = 0u64;
        let mut merge = self.merge(rtxn, plan, path, Order::Asc, None, budget)?;
        let mut reader = RowReader::new(self.rows, rtxn, Order::Asc, path.kind == KeyKind::Time);
        let mut last = None;
        while let Some(pos) = merge.next_pos()? {
            if last == Some(pos) {
                continue;
            }
            last = Some(pos);
            if covered {
                n += 1;
            } else if let Some(row) = reader.get::<R>(pos.id)? {
                if Self::matches(plan, &row, &Self::all_terms(&row)) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    fn merge<'t, 'b>(
        &self,
        rtxn: &'t RoTxn,
        plan: &Plan,
        path: &Path,
        order: Order,
        after: Option<Pos>,
        budget: &'b Budget,
    ) -> Result<Merge<'t, 'b>> {
        let mut iters = Vec::with_capacity(path.prefixes.len());
        for prefix in &path.prefixes {
            let mut lo = prefix.clone();
            let mut hi = prefix.clone();
            let kl = path.kind.len();
            if path.kind == KeyKind::Time {
                lo.extend_from_slice(&enc_time(plan.time.after.map_or(i64::MIN, |t| t.0)));
                match plan.time.before {
                    Some(b) => hi.extend_from_slice(&enc_time(b.0)),
                    None => hi.extend_from_slice(&[0xff; 16]),
                }
            } else {
                if path.kind == KeyKind::Score {
                    let min = plan.min_score.map_or(0, enc_score);
                    lo.extend_from_slice(&min.to_be_bytes());
                }
                hi.extend_from_slice(&vec![0xff; kl + 16]);
            }
            let mut lo_b = Bound::Included(lo);
            let mut hi_b = if path.kind == KeyKind::Time && plan.time.before.is_some() {
                Bound::Excluded(hi)
            } else {
                Bound::Included(hi)
            };
            if let Some(a) = after {
                let mut c = prefix.clone();
                match path.kind {
                    KeyKind::Time => {}
                    KeyKind::Score => c.extend_from_slice(&(a.k as u32).to_be_bytes()),
                    KeyKind::Duration => c.extend_from_slice(&a.k.to_be_bytes()),
                }
                c.extend_from_slice(&a.t.to_be_bytes());
                c.extend_from_slice(&a.id.to_be_bytes());
                match order {
                    Order::Asc => {
                        if bound_lt(&lo_b, &c) {
                            lo_b = Bound::Excluded(c);
                        }
                    }
                    Order::Desc => {
                        if bound_gt(&hi_b, &c) {
                            hi_b = Bound::Excluded(c);
                        }
                    }
                }
            }
            let range = (
                lo_b.as_ref().map(|v| v.as_slice()),
                hi_b.as_ref().map(|v| v.as_slice()),
            );
            let it: KeyIter<'t> = match order {
                Order::Asc => Box::new(
                    self.idx
                        .range(rtxn, &range)
                        .map_err(Error::lmdb("scan index"))?
                        .map(|r| r.map(|(k, ())| k)),
                ),
                Order::Desc => Box::new(
                    self.idx
                        .rev_range(rtxn, &range)
                        .map_err(Error::lmdb("scan index"))?
                        .map(|r| r.map(|(k, ())| k)),
                ),
            };
            iters.push(it);
        }
        Merge::new(iters, path.kind, order, budget)
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        rtxn: &RoTxn,
        plan: &Plan,
        path: &Path,
        order: Order,
        after: Option<Pos>,
        offset: u64,
        limit: usize,
        covered: bool,
        budget: &Budget,
    ) -> Result<Hits<R>> {
        let mut merge = self.merge(rtxn, plan, path, order, after, budget)?;
        // Only time-ordered paths meet ids in order; a score or duration order seeks each row.
        let mut reader = RowReader::new(self.rows, rtxn, order, path.kind == KeyKind::Time);
        // Rows go straight into the page (they are a few hundred bytes each); the cursor
        // needs only the last one's position.
        let mut out = Vec::with_capacity(limit);
        let mut at = None;
        let mut skipped = 0u64;
        let mut last = None;
        while let Some(pos) = merge.next_pos()? {
            if last == Some(pos) {
                continue;
            }
            last = Some(pos);
            if covered && skipped < offset {
                skipped += 1;
                continue;
            }
            if covered && out.len() == limit {
                // The index alone says that another row matches: no need to read it.
                return Ok((out, at, true));
            }
            let Some(row) = reader.get::<R>(pos.id)? else {
                continue;
            };
            if !covered && !Self::matches(plan, &row, &Self::all_terms(&row)) {
                continue;
            }
            if skipped < offset {
                skipped += 1;
                continue;
            }
            if out.len() == limit {
                return Ok((out, at, true));
            }
            out.push(row);
            at = Some(pos);
        }
        Ok((out, at, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn sort_in_memory(
        &self,
        rtxn: &RoTxn,
        plan: &Plan,
        path: &Path,
        sort: SortBy,
        order: Order,
        after: Option<Pos>,
        offset: u64,
        limit: usize,
        budget: &Budget,
    ) -> Result<Hits<R>> {
        let mut merge = self.merge(rtxn, plan, path, Order::Asc, None, budget)?;
        let mut reader = RowReader::new(self.rows, rtxn, Order::Asc, path.kind == KeyKind::Time);
        let mut all = Vec::new();
        let mut last = None;
        while let Some(pos) = merge.next_pos()? {
            if last == Some(pos) {
                continue;
            }
            last = Some(pos);
            let Some(row) = reader.get::<R>(pos.id)? else {
                continue;
            };
            if !Self::matches(plan, &row, &Self::all_terms(&row)) {
                continue;
            }
            let p = Self::sort_pos(&row, sort);
            let beyond = match (after, order) {
                (None, _) => true,
                (Some(a), Order::Asc) => p > a,
                (Some(a), Order::Desc) => p < a,
            };
            if beyond {
                all.push((p, row));
            }
        }
        match order {
            Order::Asc => all.sort_by_key(|a| a.0),
            Order::Desc => all.sort_by_key(|a| std::cmp::Reverse(a.0)),
        }
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
        let mut page: Vec<(Pos, R)> = all.drain(start..).collect();
        let has_more = page.len() > limit;
        page.truncate(limit);
        let last = page.last().map(|(p, _)| *p);
        Ok((page.into_iter().map(|(_, r)| r).collect(), last, has_more))
    }
}

/// Reads the rows a walk finds, in the walk's order, with one cursor instead of one B-tree
/// descent per row: event ids come from the clock, so a walk in time order meets them in id
/// order, and the next row wanted is usually the cursor's next entry. When it is not within a
/// few steps (a filtered walk, an id out of order), the reader seeks again.
struct RowReader<'t> {
    rows: Rows,
    rtxn: &'t RoTxn<'t>,
    order: Order,
    /// Whether to step along the previous row's scan before seeking.
    follow: bool,
    scan: Option<RowScan<'t>>,
}

enum RowScan<'t> {
    Asc(heed::RoRange<'t, U64<BE>, Bytes>),
    Desc(heed::RoRevRange<'t, U64<BE>, Bytes>),
}

impl<'t> RowScan<'t> {
    fn next(&mut self) -> Option<heed::Result<(u64, &'t [u8])>> {
        match self {
            RowScan::Asc(it) => it.next(),
            RowScan::Desc(it) => it.next(),
        }
    }
}

/// How many entries the reader steps over before it seeks instead.
const ROW_STEPS: usize = 4;

impl<'t> RowReader<'t> {
    fn new(rows: Rows, rtxn: &'t RoTxn<'t>, order: Order, follow: bool) -> Self {
        RowReader {
            rows,
            rtxn,
            order,
            follow,
            scan: None,
        }
    }

    /// The stored bytes of row `id`, if it exists.
    fn bytes(&mut self, id: u64) -> Result<Option<&'t [u8]>> {
        if !self.follow {
            return self
                .rows
                .get(self.rtxn, &id)
                .map_err(Error::lmdb("read row"));
        }
        if let Some(scan) = &mut self.scan {
            for _ in 0..ROW_STEPS {
                let Some(next) = scan.next() else { break };
                let (k, v) = next.map_err(Error::lmdb("read row"))?;
                if k == id {
                    return Ok(Some(v));
                }
                let passed = match self.order {
                    Order::Asc => k > id,
                    Order::Desc => k < id,
                };
                if passed {
                    break;
                }
            }
        }
        // Seek: a scan that starts at `id` and goes on in the walk's direction.
        let mut scan = match self.order {
            Order::Asc => RowScan::Asc(
                self.rows
                    .range(self.rtxn, &(id..))
                    .map_err(Error::lmdb("read row"))?,
            ),
            Order::Desc => RowScan::Desc(
                self.rows
                    .rev_range(self.rtxn, &(..=id))
                    .map_err(Error::lmdb("read row"))?,
            ),
        };
        let found = match scan.next() {
            Some(next) => {
                let (k, v) = next.map_err(Error::lmdb("read row"))?;
                (k == id).then_some(v)
            }
            None => None,
        };
        // A missing row leaves the scan past it, which is where the next id will be.
        self.scan = Some(scan);
        Ok(found)
    }

    fn get<R: Row>(&mut self, id: u64) -> Result<Option<R>> {
        match self.bytes(id)? {
            Some(b) => Ok(Some(decode(R::NAME, b)?)),
            None => Ok(None),
        }
    }
}

/// A page's rows, the position of its last row (for the cursor) and whether more match.
type Hits<R> = (Vec<R>, Option<Pos>, bool);

fn bound_lt(b: &Bound<Vec<u8>>, c: &[u8]) -> bool {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => v.as_slice() <= c,
        Bound::Unbounded => true,
    }
}

fn bound_gt(b: &Bound<Vec<u8>>, c: &[u8]) -> bool {
    match b {
        Bound::Included(v) | Bound::Excluded(v) => v.as_slice() >= c,
        Bound::Unbounded => true,
    }
}

type KeyIter<'t> = Box<dyn Iterator<Item = heed::Result<&'t [u8]>> + 't>;

/// How many index entries a query may visit (each is at most one row read and decoded).
///
/// A query whose budget runs out stops and answers `None`; the store then runs it again
/// without a limit where a long read does no harm (see `LmdbStore::query`).
pub(crate) struct Budget(Cell<u64>);

impl Budget {
    /// A budget of `visits` index entries.
    pub(crate) fn new(visits: u64) -> Budget {
        Budget(Cell::new(visits))
    }

    /// No limit.
    pub(crate) fn unlimited() -> Budget {
        Budget(Cell::new(u64::MAX))
    }

    /// Spends `n` visits; false once the budget is gone.
    fn spend(&self, n: u64) -> bool {
        let left = self.0.get();
        self.0.set(left.saturating_sub(n));
        left >= n && left > 0
    }

    fn exhausted(&self) -> bool {
        self.0.get() == 0
    }
}

/// A k-way merge of index range scans, in `order`. A heap keeps it cheap with many scans (one
/// per partition of a sort index, for instance).
struct Merge<'t, 'b> {
    iters: Vec<KeyIter<'t>>,
    budget: &'b Budget,
    /// Heads of the scans, keyed so that the heap's maximum is the next position in `order`.
    heap: BinaryHeap<(Pos, usize)>,
    kind: KeyKind,
    order: Order,
}

impl Pos {
    /// The same position with its order reversed, so a max-heap yields ascending positions.
    fn flipped(self) -> Pos {
        Pos {
            k: !self.k,
            t: !self.t,
            id: !self.id,
        }
    }
}

impl<'t, 'b> Merge<'t, 'b> {
    fn new(
        iters: Vec<KeyIter<'t>>,
        kind: KeyKind,
        order: Order,
        budget: &'b Budget,
    ) -> Result<Self> {
        if !budget.spend(iters.len() as u64) {
            // Too many scans to open: end at once (the caller sees the spent budget).
            return Ok(Merge {
                heap: BinaryHeap::new(),
                iters: Vec::new(),
                budget,
                kind,
                order,
            });
        }
        let mut m = Merge {
            budget,
            heap: BinaryHeap::with_capacity(iters.len()),
            iters,
            kind,
            order,
        };
        for i in 0..m.iters.len() {
            m.advance(i)?;
        }
        Ok(m)
    }

    /// Reads the next key of scan `i` onto the heap.
    fn advance(&mut self, i: usize) -> Result<()> {
        let Some(k) = self.iters[i].next() else {
            return Ok(());
        };
        let k = k.map_err(Error::lmdb("scan index"))?;
        let (mut p, end) =
            Pos::of_key(k).ok_or_else(|| Error::Invalid("short index key".to_owned()))?;
        let kl = self.kind.len();
        if kl > 0 && end >= kl {
            let mut b = [0u8; 8];
            b[8 - kl..].copy_from_slice(&k[end - kl..end]);
            p.k = u64::from_be_bytes(b);
        }
        let keyed = match self.order {
            Order::Asc => p.flipped(),
            Order::Desc => p,
        };
        self.heap.push((keyed, i));
        Ok(())
    }

    /// The next position, or `None` at the end of the scans or of the budget.
    fn next_pos(&mut self) -> Result<Option<Pos>> {
        if !self.budget.spend(1) {
            return Ok(None);
        }
        let Some((keyed, i)) = self.heap.pop() else {
            return Ok(None);
        };
        self.advance(i)?;
        Ok(Some(match self.order {
            Order::Asc => keyed.flipped(),
            Order::Desc => keyed,
        }))
    }
}

const CURSOR_VERSION: u8 = 1;

fn sort_code(s: SortBy) -> u8 {
    match s {
        SortBy::Time => 0,
        SortBy::Score => 1,
        SortBy::Duration => 2,
    }
}

fn encode_cursor(p: Pos, sort: SortBy, order: Order, fp: u64) -> String {
    let mut b = Vec::with_capacity(35);
    b.push(CURSOR_VERSION);
    b.push(sort_code(sort));
    b.push(matches!(order, Order::Desc) as u8);
    b.extend_from_slice(&p.k.to_be_bytes());
    b.extend_from_slice(&p.t.to_be_bytes());
    b.extend_from_slice(&p.id.to_be_bytes());
    b.extend_from_slice(&fp.to_be_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len());
    for x in b {
        s.push(char::from(HEX[usize::from(x >> 4)]));
        s.push(char::from(HEX[usize::from(x & 15)]));
    }
    s
}

fn decode_cursor(s: &str, sort: SortBy, order: Order, fp: u64) -> Result<Pos> {
    let bad = || Error::Invalid(format!("cursor {s:?} is not a cursor this server issued"));
    if s.len() != 70 || !s.is_ascii() {
        return Err(bad());
    }
    let mut b = Vec::with_capacity(35);
    for i in (0..70).step_by(2) {
        b.push(u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| bad())?);
    }
    let u = |r: std::ops::Range<usize>| -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[r]);
        u64::from_be_bytes(a)
    };
    if b[0] != CURSOR_VERSION {
        return Err(bad());
    }
    if b[1] != sort_code(sort) || b[2] != matches!(order, Order::Desc) as u8 || u(27..35) != fp {
        return Err(Error::Invalid(
            "cursor belongs to a different query (filters or order changed); start again without it"
                .to_owned(),
        ));
    }
    Ok(Pos {
        k: u(3..11),
        t: u(11..19),
        id: u(19..27),
    })
}

/// Decodes a bucket key part: bytes up to the next 0x00, as UTF-8.
pub(crate) fn split_zero(b: &[u8]) -> (&str, &[u8]) {
    match b.iter().position(|x| *x == 0) {
        Some(i) => (std::str::from_utf8(&b[..i]).unwrap_or(""), &b[i + 1..]),
        None => (std::str::from_utf8(b).unwrap_or(""), &[]),
    }
}

/// Hour number (hours since the epoch) of a time.
pub(crate) fn hour_of(t: i64) -> i64 {
    t.div_euclid(3_600_000_000)
}

/// Reads an 8-byte encoded hour at the start of `b`.
pub(crate) fn read_hour(b: &[u8]) -> Option<(i64, &[u8])> {
    let a: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((dec_time(a), &b[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_encoding_orders() {
        let ts = [i64::MIN, -5, -1, 0, 1, 1_700_000_000_000_000, i64::MAX];
        for w in ts.windows(2) {
            assert!(enc_time(w[0]) < enc_time(w[1]));
        }
        for t in ts {
            assert_eq!(dec_time(enc_time(t)), t);
        }
    }

    #[test]
    fn score_encoding_orders() {
        let s = [0.0f32, 1e-6, 0.25, 0.5, 0.999, 1.0];
        for w in s.windows(2) {
            assert!(enc_score(w[0]) < enc_score(w[1]));
        }
        assert_eq!(enc_score(f32::NAN), 0);
        assert_eq!(enc_score(-1.0), 0);
    }

    #[test]
    fn cursor_round_trip_and_rejects() {
        let p = Pos { k: 3, t: 4, id: 5 };
        let c = encode_cursor(p, SortBy::Score, Order::Desc, 99);
        // Lower-case hex of version, sort, order, k, t, id, fingerprint: cursors handed out
        // before an upgrade keep working.
        let want: String = [CURSOR_VERSION, 1, 1]
            .into_iter()
            .chain([3u64, 4, 5, 99].iter().flat_map(|v| v.to_be_bytes()))
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(c, want);
        assert_eq!(
            decode_cursor(&c, SortBy::Score, Order::Desc, 99).unwrap(),
            p
        );
        assert!(decode_cursor(&c, SortBy::Time, Order::Desc, 99).is_err());
        assert!(decode_cursor(&c, SortBy::Score, Order::Asc, 99).is_err());
        assert!(decode_cursor(&c, SortBy::Score, Order::Desc, 98).is_err());
        assert!(decode_cursor("zz", SortBy::Score, Order::Desc, 99).is_err());
        assert!(decode_cursor(&"é".repeat(35), SortBy::Score, Order::Desc, 99).is_err());
    }
}
