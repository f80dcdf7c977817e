//! Vigil's [`Store`] on LMDB, through heed.
//!
//! Everything Vigil knows (cameras, events, detections, recordings, snapshots, timelapse frames,
//! triggers, accounts, keys, alert rules, audit and log entries) lives in one LMDB environment in
//! the data directory. LMDB gives crash safety for free: a transaction is either committed and
//! synced, or not there after a crash.
//!
//! # Layout
//! - [`LmdbStore`]: opens the environment, checks the schema version, runs the writer thread and
//!   implements the `Store` trait.
//! - `table`: the indexed-table engine (rows, secondary indexes, counters, the query planner).
//! - `rows`: what each record kind indexes and counts.
//! - `conformance` (feature `conformance`): the test suite every `Store` must pass.
//!
//! Design notes: `docs/design/storage.md` in the repository.
//!
//! # Example
//!
//! ```
//! use vigil_core::{Store, Mutation, LogEntry, LogId, LogLevel, LogFilter, Query, Timestamp};
//! use vigil_store::{LmdbStore, StoreOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let rt = tokio::runtime::Builder::new_multi_thread().build()?;
//! rt.block_on(async {
//!     let store = LmdbStore::open(dir.path(), StoreOptions::default())?;
//!     let line = LogEntry {
//!         id: LogId(1),
//!         time: Timestamp::parse("2025-12-23T12:00:00Z")?,
//!         level: LogLevel::Warning,
//!         source: "recorder".into(),
//!         camera: None,
//!         message: "disk is 90% full".into(),
//!     };
//!     store.apply(Mutation::PutLog(Box::new(line)).into()).await?;
//!     let mut q = Query::new(LogFilter { text: Some("FULL".into()), ..Default::default() });
//!     q.page.limit = 10;
//!     let page = store.log_entries(&q).await?;
//!     assert_eq!(page.items.len(), 1);
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod error;
mod rows;
mod table;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use heed::types::{Bytes, Str};
use heed::{Database, Env, EnvOpenOptions, RoTxn, RwTxn};
use tokio::sync::oneshot;
use vigil_core::*;

pub use error::{Error, Result as StoreResult};

use rows::*;
use table::{hour_of, read_hour, split_zero, Budget, Deltas, Plan, Row, Table};

/// The schema version this build reads and writes. Bump it whenever a stored type, a key layout
/// or an index changes, and add an upgrade step.
pub const SCHEMA_VERSION: u32 = 3;

/// How to open a store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Initial size of the memory map. It grows (doubling) when full, so this only needs to be a
    /// sensible start; the file on disk grows only as data is written.
    pub map_size_bytes: usize,
    /// Most write requests merged into one transaction.
    pub max_batch_jobs: usize,
    /// A score- or duration-sorted list whose filter matches at most this many rows (by the
    /// index counters) is sorted in memory; larger ones walk the day-partitioned sort index.
    /// Both give the same pages; the conformance tests run with 0 to cover the index walk.
    pub in_memory_sort_max: u64,
    /// Index entries a list query may visit on the calling async thread. A page read from an
    /// index (nearly every request) is answered there: a few dozen B-tree lookups cost less
    /// than the two thread wake-ups of a hop to the blocking pool. A query that needs more (a
    /// post-filtered scan, a count over a time range, a deep offset) stops and runs again on
    /// the blocking pool, so the async runtime is never held long. 0 sends every query to the
    /// pool; the conformance tests run with a tiny budget so that queries stop part-way.
    pub inline_visits: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            map_size_bytes: 1 << 30,
            max_batch_jobs: 256,
            in_memory_sort_max: 20_000,
            // A page of 50 with its count visits about 60; 2,000 is well under a millisecond.
            inline_visits: 2_000,
        }
    }
}

/// Keys of the `config` database: `[kind] id`.
mod cfg {
    pub const CAMERA: u8 = 1;
    pub const TRIGGER: u8 = 2;
    pub const ACCOUNT: u8 = 3;
    pub const API_KEY: u8 = 4;
    pub const ALERT_RULE: u8 = 5;
    pub const QUIET_HOURS: u8 = 6;
    pub const NOTIFICATIONS: u8 = 7;
    pub const SETTING: u8 = 8;
}

struct Tables {
    events: Table<Event>,
    detections: Table<Detection>,
    recordings: Table<Recording>,
    snapshots: Table<Snapshot>,
    timelapse: Table<TimelapseFrame>,
    audit: Table<AuditEntry>,
    logs: Table<LogEntry>,
    config: Database<Bytes, Bytes>,
    aggs: Vec<table::Agg>,
}

struct Inner {
    env: Env,
    t: Tables,
    /// Readers hold it shared while a read transaction is open; the writer takes it exclusively
    /// to grow the map, which LMDB allows only with no transaction open in the process.
    resize: RwLock<()>,
    path: PathBuf,
    /// [`StoreOptions::inline_visits`].
    inline_visits: u64,
    /// Committed batches, for [`Store::changes`].
    changes: tokio::sync::broadcast::Sender<Arc<Batch>>,
}

struct Job {
    batch: Batch,
    reply: oneshot::Sender<vigil_core::Result<()>>,
}

/// The LMDB store. Open one per data directory and share it (`Arc<LmdbStore>` or
/// `Arc<dyn Store>`); dropping the last handle waits for pending writes and closes the files.
pub struct LmdbStore {
    inner: Arc<Inner>,
    tx: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LmdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmdbStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl LmdbStore {
    /// Opens (or creates) the store in directory `dir`.
    ///
    /// Fails with [`Error::SchemaVersion`] when the directory holds a store of another schema
    /// version.
    pub fn open(dir: &Path, opts: StoreOptions) -> StoreResult<LmdbStore> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Open {
            path: dir.display().to_string(),
            source,
        })?;
        let mut eo = EnvOpenOptions::new();
        eo.map_size(round_to_page(opts.map_size_bytes)).max_dbs(32);
        // SAFETY: the environment is opened once per directory by this process (LmdbStore owns
        // it and heed refuses a second open of the same path), and the files are not modified
        // by other means while mapped.
        let env = unsafe { eo.open(dir) }.map_err(Error::lmdb("open environment"))?;
        let mut wtxn = env.write_txn().map_err(Error::lmdb("begin"))?;
        let meta: Database<Str, Bytes> = env
            .create_database(&mut wtxn, Some("meta"))
            .map_err(Error::lmdb("create database"))?;
        match meta
            .get(&wtxn, "schema_version")
            .map_err(Error::lmdb("read schema version"))?
        {
            Some(v) => {
                let found =
                    v.try_into()
                        .map(u32::from_be_bytes)
                        .map_err(|_| Error::SchemaVersion {
                            found: u32::MAX,
                            supported: SCHEMA_VERSION,
                        })?;
                if found != SCHEMA_VERSION {
                    return Err(Error::SchemaVersion {
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
            }
            None => meta
                .put(&mut wtxn, "schema_version", &SCHEMA_VERSION.to_be_bytes())
                .map_err(Error::lmdb("write schema version"))?,
        }
        let t = Tables::create(&env, &mut wtxn, opts.in_memory_sort_max)?;
        wtxn.commit().map_err(Error::lmdb("commit"))?;
        let inner = Arc::new(Inner {
            env,
            t,
            resize: RwLock::new(()),
            path: dir.to_owned(),
            inline_visits: opts.inline_visits,
            changes: tokio::sync::broadcast::channel(vigil_core::store::CHANGE_FEED_DEPTH).0,
        });
        let (tx, rx) = mpsc::channel();
        let w = inner.clone();
        let max_jobs = opts.max_batch_jobs.max(1);
        let writer = std::thread::Builder::new()
            .name("vigil-store-writer".into())
            .spawn(move || writer_loop(&w, &rx, max_jobs))
            .map_err(|source| Error::Open {
                path: dir.display().to_string(),
                source,
            })?;
        Ok(LmdbStore {
            inner,
            tx: Some(tx),
            writer: Some(writer),
        })
    }

    /// The directory the store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The current size of the memory map.
    pub fn map_size(&self) -> usize {
        self.inner.env.info().map_size
    }

    /// Runs a list query, on this thread within [`StoreOptions::inline_visits`], else on the
    /// blocking pool.
    async fn query<R: Row, F>(
        &self,
        table: fn(&Tables) -> &Table<R>,
        plan: Plan,
        q: &Query<F>,
    ) -> vigil_core::Result<Page<R>> {
        let (sort, order, page) = (q.sort, q.order, q.page.clone());
        if self.inner.inline_visits > 0 {
            let budget = Budget::new(self.inner.inline_visits);
            let quick =
                self.read_here(|t, r| table(t).query(r, &plan, sort, order, &page, &budget))?;
            if let Some(Some(p)) = quick {
                return Ok(p);
            }
        }
        self.read(move |t, r| {
            table(t)
                .query(r, &plan, sort, order, &page, &Budget::unlimited())?
                .ok_or_else(|| Error::Invalid("a query ran out of an unlimited budget".into()))
        })
        .await
    }

    /// Runs `f` in a read transaction on this thread; `None` while the map is being resized.
    fn read_here<T>(
        &self,
        f: impl FnOnce(&Tables, &RoTxn) -> StoreResult<T>,
    ) -> vigil_core::Result<Option<T>> {
        let Ok(_shared) = self.inner.resize.try_read() else {
            return Ok(None);
        };
        let rtxn = self
            .inner
            .env
            .read_txn()
            .map_err(Error::lmdb("begin read"))?;
        Ok(Some(f(&self.inner.t, &rtxn)?))
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Tables, &RoTxn) -> StoreResult<T> + Send + 'static,
    ) -> vigil_core::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _shared = inner.resize.read().unwrap_or_else(|e| e.into_inner());
            let rtxn = inner.env.read_txn().map_err(Error::lmdb("begin read"))?;
            f(&inner.t, &rtxn)
        })
        .await
        .map_err(|e| vigil_core::Error::internal(format!("store reader panicked: {e}")))?
        .map_err(Into::into)
    }
}

impl Drop for LmdbStore {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what is queued and exit.
        self.tx.take();
        if let Some(w) = self.writer.take() {
            if w.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
    }
}

fn round_to_page(n: usize) -> usize {
    const PAGE: usize = 4096;
    n.max(PAGE * 16).div_ceil(PAGE) * PAGE
}

impl Tables {
    fn create(env: &Env, wtxn: &mut RwTxn, sort_max: u64) -> StoreResult<Tables> {
        let events = Table::create(env, wtxn, 0, sort_max)?;
        let detections = Table::create(env, wtxn, 1, sort_max)?;
        let recordings = Table::create(env, wtxn, 2, sort_max)?;
        let snapshots = Table::create(env, wtxn, 3, sort_max)?;
        let timelapse = Table::create(env, wtxn, 4, sort_max)?;
        let audit = Table::create(env, wtxn, 5, sort_max)?;
        let logs = Table::create(env, wtxn, 6, sort_max)?;
        let aggs = vec![
            events.agg,
            detections.agg,
            recordings.agg,
            snapshots.agg,
            timelapse.agg,
            audit.agg,
            logs.agg,
        ];
        let config = env
            .create_database(wtxn, Some("config"))
            .map_err(Error::lmdb("create database"))?;
        Ok(Tables {
            events,
            detections,
            recordings,
            snapshots,
            timelapse,
            audit,
            logs,
            config,
            aggs,
        })
    }

    fn put_config<T: serde::Serialize>(
        &self,
        wtxn: &mut RwTxn,
        kind: u8,
        id: &[u8],
        v: &T,
    ) -> StoreResult<()> {
        let bytes = table::encode("config", v)?;
        self.config
            .put(wtxn, &config_key(kind, id), &bytes)
            .map_err(Error::lmdb("write config"))
    }

    fn delete_config(&self, wtxn: &mut RwTxn, kind: u8, id: &[u8]) -> StoreResult<()> {
        self.config
            .delete(wtxn, &config_key(kind, id))
            .map_err(Error::lmdb("delete config"))?;
        Ok(())
    }

    fn get_config<T: serde::de::DeserializeOwned>(
        &self,
        rtxn: &RoTxn,
        kind: u8,
        id: &[u8],
    ) -> StoreResult<Option<T>> {
        match self
            .config
            .get(rtxn, &config_key(kind, id))
            .map_err(Error::lmdb("read config"))?
        {
            Some(b) => Ok(Some(table::decode("config", b)?)),
            None => Ok(None),
        }
    }

    fn list_config<T: serde::de::DeserializeOwned>(
        &self,
        rtxn: &RoTxn,
        kind: u8,
    ) -> StoreResult<Vec<T>> {
        let mut out = Vec::new();
        for item in self
            .config
            .prefix_iter(rtxn, &[kind])
            .map_err(Error::lmdb("scan config"))?
        {
            let (_, v) = item.map_err(Error::lmdb("scan config"))?;
            out.push(table::decode("config", v)?);
        }
        Ok(out)
    }

    fn apply(&self, wtxn: &mut RwTxn, m: &Mutation, d: &mut Deltas) -> StoreResult<Written> {
        use Mutation as M;
        let be = |n: u64| n.to_be_bytes();
        match m {
            M::PutCamera(c) => self.put_config(wtxn, cfg::CAMERA, c.id.as_str().as_bytes(), c)?,
            M::DeleteCamera(id) => self.delete_config(wtxn, cfg::CAMERA, id.as_str().as_bytes())?,
            M::PutTrigger(x) => self.put_config(wtxn, cfg::TRIGGER, &be(x.id.0), x)?,
            M::DeleteTrigger(id) => self.delete_config(wtxn, cfg::TRIGGER, &be(id.0))?,
            M::PutAccount(x) => self.put_config(wtxn, cfg::ACCOUNT, &be(x.id.0), x)?,
            M::DeleteAccount(id) => self.delete_config(wtxn, cfg::ACCOUNT, &be(id.0))?,
            M::PutApiKey(x) => self.put_config(wtxn, cfg::API_KEY, &be(x.id.0), x)?,
            M::DeleteApiKey(id) => self.delete_config(wtxn, cfg::API_KEY, &be(id.0))?,
            M::PutAlertRule(x) => self.put_config(wtxn, cfg::ALERT_RULE, &be(x.id.0), x)?,
            M::DeleteAlertRule(id) => self.delete_config(wtxn, cfg::ALERT_RULE, &be(id.0))?,
            M::PutQuietHours(x) => self.put_config(wtxn, cfg::QUIET_HOURS, &be(x.id.0), x)?,
            M::DeleteQuietHours(id) => self.delete_config(wtxn, cfg::QUIET_HOURS, &be(id.0))?,
            M::PutNotificationPreferences(x) => {
                self.put_config(wtxn, cfg::NOTIFICATIONS, &[], x)?
            }
            M::PutSetting { key, value } => {
                self.put_config(wtxn, cfg::SETTING, key.as_bytes(), value)?
            }
            M::DeleteSetting(key) => self.delete_config(wtxn, cfg::SETTING, key.as_bytes())?,
            M::PutEvent(x) => self.events.put(wtxn, x, d)?,
            M::UpdateEvent(x) => {
                let mut e = Event::clone(x);
                if let Some(stored) = self.events.get(wtxn, e.id.0)? {
                    e.keep_what_people_set(&stored);
                }
                self.events.put(wtxn, &e, d)?;
                return Ok(Written::Event(Box::new(e)));
            }
            M::PatchEvent(p) => {
                let Some(stored) = self.events.get(wtxn, p.id.0)? else {
                    return Ok(Written::Nothing);
                };
                let mut e = stored.clone();
                p.apply_to(&mut e);
                if e == stored {
                    return Ok(Written::Nothing);
                }
                self.events.put(wtxn, &e, d)?;
                return Ok(Written::Event(Box::new(e)));
            }
            M::DeleteEvent(id) => drop(self.events.delete(wtxn, id.0, d)?),
            M::PutDetection(x) => self.detections.put(wtxn, x, d)?,
            M::DeleteDetection(id) => drop(self.detections.delete(wtxn, id.0, d)?),
            M::PutRecording(x) => self.recordings.put(wtxn, x, d)?,
            M::DeleteRecording(id) => drop(self.recordings.delete(wtxn, id.0, d)?),
            M::SetRecordingArt {
                id,
                thumbnail_path,
                sprite_path,
            } => {
                if let Some(mut r) = self.recordings.get(wtxn, id.0)? {
                    r.thumbnail_path.clone_from(thumbnail_path);
                    r.sprite_path.clone_from(sprite_path);
                    self.recordings.put(wtxn, &r, d)?;
                }
            }
            M::PutSnapshot(x) => self.snapshots.put(wtxn, x, d)?,
            M::DeleteSnapshot(id) => drop(self.snapshots.delete(wtxn, id.0, d)?),
            M::PutTimelapseFrame(x) => self.timelapse.put(wtxn, x, d)?,
            M::DeleteTimelapseFrame(id) => drop(self.timelapse.delete(wtxn, id.0, d)?),
            M::PutAudit(x) => self.audit.put(wtxn, x, d)?,
            M::PutLog(x) => self.logs.put(wtxn, x, d)?,
            M::DeleteLogsBefore(t) => loop {
                let ids = self.logs.ids_before(wtxn, t.0, 1024)?;
                if ids.is_empty() {
                    break;
                }
                for id in ids {
                    self.logs.delete(wtxn, id, d)?;
                }
            },
            _ => return Err(Error::Invalid(format!("this store does not support {m:?}"))),
        }
        Ok(Written::AsGiven)
    }
}

/// What a mutation wrote, as the change feed announces it.
enum Written {
    /// The mutation itself.
    AsGiven,
    /// This event (an [`Mutation::UpdateEvent`] or [`Mutation::PatchEvent`] resolved against
    /// the stored one).
    Event(Box<Event>),
    /// Nothing (a patch of an event that is gone, or that changes nothing).
    Nothing,
}

fn config_key(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 1);
    k.push(kind);
    k.extend_from_slice(id);
    k
}

/// Commits `batches` in one transaction. For each, what the change feed announces in its place
/// when that differs from the batch (see [`Written`]).
fn commit(inner: &Inner, batches: &[&Batch]) -> StoreResult<Vec<Option<Batch>>> {
    let mut wtxn = inner.env.write_txn().map_err(Error::lmdb("begin write"))?;
    let mut deltas = Deltas::default();
    let mut written = Vec::with_capacity(batches.len());
    for b in batches {
        let mut resolved: Option<Vec<Mutation>> = None;
        for (i, m) in b.mutations.iter().enumerate() {
            let w = inner.t.apply(&mut wtxn, m, &mut deltas)?;
            if let (Written::AsGiven, None) = (&w, &resolved) {
                continue;
            }
            let r = resolved.get_or_insert_with(|| b.mutations[..i].to_vec());
            match w {
                Written::AsGiven => r.push(m.clone()),
                Written::Event(e) => r.push(Mutation::PutEvent(e)),
                Written::Nothing => {}
            }
        }
        written.push(resolved.map(|mutations| Batch { mutations }));
    }
    deltas.flush(&mut wtxn, &inner.t.aggs)?;
    wtxn.commit().map_err(Error::lmdb("commit"))?;
    Ok(written)
}

/// Commits, growing the map and retrying while LMDB says it is full.
fn commit_growing(inner: &Inner, batches: &[&Batch]) -> StoreResult<Vec<Option<Batch>>> {
    loop {
        match commit(inner, batches) {
            Err(e) if e.is_map_full() => grow(inner)?,
            r => return r,
        }
    }
}

fn grow(inner: &Inner) -> StoreResult<()> {
    let _exclusive = inner.resize.write().unwrap_or_else(|e| e.into_inner());
    let new_size = round_to_page(inner.env.info().map_size.saturating_mul(2));
    tracing::info!(new_size, "store map is full; growing it");
    // SAFETY: the exclusive lock guarantees no read transaction is open in this process, and the
    // writer (this thread) has dropped its write transaction before calling grow.
    unsafe { inner.env.resize(new_size) }.map_err(Error::lmdb("grow map"))
}

fn writer_loop(inner: &Inner, rx: &mpsc::Receiver<Job>, max_jobs: usize) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < max_jobs {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let batches: Vec<&Batch> = jobs.iter().map(|j| &j.batch).collect();
        // A committed batch goes to the change feed before its writer hears back, so that a
        // subscriber has it queued by the time `apply` returns.
        let done = |j: Job, written: Option<Batch>| {
            let batch = written.unwrap_or(j.batch);
            // A batch that wrote nothing (patches of events that are gone) is not announced.
            if !batch.mutations.is_empty() {
                let _ = inner.changes.send(Arc::new(batch));
            }
            let _ = j.reply.send(Ok(()));
        };
        match commit_growing(inner, &batches) {
            Ok(written) => jobs.into_iter().zip(written).for_each(|(j, w)| done(j, w)),
            Err(_) if jobs.len() > 1 => {
                // One batch spoiled the group: commit each alone so only it fails.
                for j in jobs {
                    match commit_growing(inner, &[&j.batch]) {
                        Ok(mut written) => {
                            let w = written.pop().flatten();
                            done(j, w)
                        }
                        Err(e) => {
                            let _ = j.reply.send(Err(e.into()));
                        }
                    }
                }
            }
            Err(e) => {
                for j in jobs {
                    let _ = j
                        .reply
                        .send(Err(vigil_core::Error::new(e.kind(), e.to_string())));
                }
            }
        }
    }
}

fn day_rows<K: Ord + Clone>(
    hours: Vec<(i64, K, table::AggValue)>,
    tz: &jiff::tz::TimeZone,
) -> BTreeMap<(jiff::civil::Date, K), table::AggValue> {
    let mut out: BTreeMap<(jiff::civil::Date, K), table::AggValue> = BTreeMap::new();
    // Buckets arrive in hour order: convert each distinct hour to a local day once.
    let mut last: Option<(i64, Option<jiff::civil::Date>)> = None;
    for (h, k, v) in hours {
        let day = match last {
            Some((lh, d)) if lh == h => d,
            _ => {
                let d = Timestamp(h.saturating_mul(3_600_000_000)).date_in(tz);
                last = Some((h, d));
                d
            }
        };
        let Some(day) = day else {
            continue;
        };
        let e = out.entry((day, k)).or_insert([0; table::AGG_WIDTH]);
        for (a, b) in e.iter_mut().zip(v) {
            *a += b;
        }
    }
    out
}

/// Reads hourly buckets under `tag` within the filter's hours; returns (hour, rest of key, value).
fn hour_buckets<R: table::Row>(
    t: &Table<R>,
    rtxn: &RoTxn,
    tag: u8,
    f: &SummaryFilter,
) -> StoreResult<Vec<(i64, Vec<u8>, table::AggValue)>> {
    let lo_h = f.time.after.map_or(i64::MIN, |a| hour_of(a.0));
    let hi_h = f
        .time
        .before
        .map_or(i64::MAX, |b| hour_of(b.0.saturating_sub(1)));
    let mut out = Vec::new();
    let mut lo = vec![tag];
    lo.extend_from_slice(&table::enc_time(lo_h));
    for item in t
        .agg
        .range(
            rtxn,
            &(
                std::ops::Bound::Included(&lo[..]),
                std::ops::Bound::Unbounded,
            ),
        )
        .map_err(Error::lmdb("scan buckets"))?
    {
        let (k, v) = item.map_err(Error::lmdb("scan buckets"))?;
        if k.first() != Some(&tag) {
            break;
        }
        let Some((h, rest)) = read_hour(&k[1..]) else {
            continue;
        };
        if h > hi_h {
            break;
        }
        out.push((h, rest.to_vec(), table::decode_agg(v)));
    }
    Ok(out)
}

fn name_filter_ok(list: &[String], v: &str) -> bool {
    list.is_empty() || list.iter().any(|x| x == v)
}

fn camera_filter_ok(list: &[CameraId], v: &str) -> bool {
    list.is_empty() || list.iter().any(|x| x.as_str() == v)
}

fn to_camera_map(m: BTreeMap<String, u64>) -> BTreeMap<CameraId, u64> {
    m.into_iter()
        .filter_map(|(k, v)| CameraId::new(k).ok().map(|c| (c, v)))
        .collect()
}

#[async_trait]
impl Store for LmdbStore {
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Arc<Batch>> {
        self.inner.changes.subscribe()
    }

    async fn apply(&self, batch: Batch) -> vigil_core::Result<()> {
        for m in &batch.mutations {
            m.validate()?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.as_ref().ok_or(Error::Closed)?;
        tx.send(Job { batch, reply }).map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn max_id(&self) -> vigil_core::Result<u64> {
        self.read(|t, r| {
            let mut m = 0u64;
            for rows in [
                t.events.rows,
                t.detections.rows,
                t.recordings.rows,
                t.snapshots.rows,
                t.timelapse.rows,
                t.audit.rows,
                t.logs.rows,
            ] {
                if let Some((k, _)) = rows.last(r).map_err(Error::lmdb("last"))? {
                    m = m.max(k);
                }
            }
            for kind in [
                cfg::TRIGGER,
                cfg::ACCOUNT,
                cfg::API_KEY,
                cfg::ALERT_RULE,
                cfg::QUIET_HOURS,
            ] {
                for item in t
                    .config
                    .prefix_iter(r, &[kind])
                    .map_err(Error::lmdb("scan config"))?
                {
                    let (k, _) = item.map_err(Error::lmdb("scan config"))?;
                    if let Ok(b) = <[u8; 8]>::try_from(&k[1..]) {
                        m = m.max(u64::from_be_bytes(b));
                    }
                }
            }
            Ok(m)
        })
        .await
    }

    async fn camera(&self, id: &CameraId) -> vigil_core::Result<Option<CameraConfig>> {
        let id = id.clone();
        self.read(move |t, r| t.get_config(r, cfg::CAMERA, id.as_str().as_bytes()))
            .await
    }
    async fn cameras(&self) -> vigil_core::Result<Vec<CameraConfig>> {
        self.read(|t, r| t.list_config(r, cfg::CAMERA)).await
    }
    async fn trigger(&self, id: TriggerId) -> vigil_core::Result<Option<Trigger>> {
        self.read(move |t, r| t.get_config(r, cfg::TRIGGER, &id.0.to_be_bytes()))
            .await
    }
    async fn triggers(&self) -> vigil_core::Result<Vec<Trigger>> {
        self.read(|t, r| t.list_config(r, cfg::TRIGGER)).await
    }
    async fn account(&self, id: AccountId) -> vigil_core::Result<Option<Account>> {
        self.read(move |t, r| t.get_config(r, cfg::ACCOUNT, &id.0.to_be_bytes()))
            .await
    }
    async fn account_by_username(&self, username: &str) -> vigil_core::Result<Option<Account>> {
        let u = username.to_owned();
        self.read(move |t, r| {
            let all: Vec<Account> = t.list_config(r, cfg::ACCOUNT)?;
            Ok(all.into_iter().find(|a| a.username == u))
        })
        .await
    }
    async fn accounts(&self) -> vigil_core::Result<Vec<Account>> {
        self.read(|t, r| t.list_config(r, cfg::ACCOUNT)).await
    }
    async fn api_key(&self, id: ApiKeyId) -> vigil_core::Result<Option<ApiKey>> {
        self.read(move |t, r| t.get_config(r, cfg::API_KEY, &id.0.to_be_bytes()))
            .await
    }
    async fn api_keys(&self) -> vigil_core::Result<Vec<ApiKey>> {
        self.read(|t, r| t.list_config(r, cfg::API_KEY)).await
    }
    async fn alert_rule(&self, id: AlertRuleId) -> vigil_core::Result<Option<AlertRule>> {
        self.read(move |t, r| t.get_config(r, cfg::ALERT_RULE, &id.0.to_be_bytes()))
            .await
    }
    async fn alert_rules(&self) -> vigil_core::Result<Vec<AlertRule>> {
        self.read(|t, r| t.list_config(r, cfg::ALERT_RULE)).await
    }
    async fn quiet_hours(&self) -> vigil_core::Result<Vec<QuietHours>> {
        self.read(|t, r| t.list_config(r, cfg::QUIET_HOURS)).await
    }
    async fn notification_preferences(&self) -> vigil_core::Result<NotificationPreferences> {
        self.read(|t, r| {
            Ok(t.get_config(r, cfg::NOTIFICATIONS, &[])?
                .unwrap_or_default())
        })
        .await
    }

    async fn setting(&self, key: &str) -> vigil_core::Result<Option<String>> {
        let key = key.to_owned();
        self.read(move |t, r| t.get_config(r, cfg::SETTING, key.as_bytes()))
            .await
    }

    async fn event(&self, id: EventId) -> vigil_core::Result<Option<Event>> {
        self.read(move |t, r| t.events.get(r, id.0)).await
    }
    async fn events(&self, q: &Query<EventFilter>) -> vigil_core::Result<Page<Event>> {
        self.query(|t| &t.events, event_plan(&q.filter), q).await
    }
    async fn events_summary(
        &self,
        f: &SummaryFilter,
        tz: &jiff::tz::TimeZone,
    ) -> vigil_core::Result<Vec<EventSummaryRow>> {
        let (f, tz) = (f.clone(), tz.clone());
        self.read(move |t, r| {
            let mut hours = Vec::new();
            for (h, rest, v) in hour_buckets(&t.events, r, ev::SUMMARY, &f)? {
                let (cam, rest) = split_zero(&rest);
                let (label, rest) = split_zero(rest);
                let zones = std::str::from_utf8(rest).unwrap_or("");
                if camera_filter_ok(&f.cameras, cam) && name_filter_ok(&f.labels, label) {
                    hours.push((h, (cam.to_owned(), label.to_owned(), zones.to_owned()), v));
                }
            }
            Ok(day_rows(hours, &tz)
                .into_iter()
                .filter_map(|((day, (cam, label, zones)), v)| {
                    Some(EventSummaryRow {
                        camera: CameraId::new(cam).ok()?,
                        label,
                        zones: zones
                            .split(',')
                            .filter(|z| !z.is_empty())
                            .map(str::to_owned)
                            .collect(),
                        day,
                        count: v[0].max(0) as u64,
                        with_clip: v[1].max(0) as u64,
                        with_snapshot: v[2].max(0) as u64,
                        reviewed: v[3].max(0) as u64,
                    })
                })
                .collect())
        })
        .await
    }
    async fn event_counts(&self) -> vigil_core::Result<EventCounts> {
        self.read(|t, r| {
            Ok(EventCounts {
                total: t.events.len(r)?,
                by_camera: to_camera_map(t.events.term_counts(r, ev::CAMERA)?),
                by_label: t.events.term_counts(r, ev::LABEL)?,
                by_review: t.events.term_counts(r, ev::REVIEW)?,
            })
        })
        .await
    }

    async fn detection(&self, id: DetectionId) -> vigil_core::Result<Option<Detection>> {
        self.read(move |t, r| t.detections.get(r, id.0)).await
    }
    async fn detections(&self, q: &Query<DetectionFilter>) -> vigil_core::Result<Page<Detection>> {
        self.query(|t| &t.detections, detection_plan(&q.filter), q)
            .await
    }
    async fn detection_trends(
        &self,
        f: &SummaryFilter,
        tz: &jiff::tz::TimeZone,
    ) -> vigil_core::Result<Vec<DetectionTrendRow>> {
        let (f, tz) = (f.clone(), tz.clone());
        self.read(move |t, r| {
            let mut hours = Vec::new();
            for (h, rest, v) in hour_buckets(&t.detections, r, det::TRENDS, &f)? {
                let (cam, rest) = split_zero(&rest);
                let label = std::str::from_utf8(rest).unwrap_or("");
                if camera_filter_ok(&f.cameras, cam) && name_filter_ok(&f.labels, label) {
                    hours.push((h, (cam.to_owned(), label.to_owned()), v));
                }
            }
            Ok(day_rows(hours, &tz)
                .into_iter()
                .filter_map(|((day, (cam, label)), v)| {
                    Some(DetectionTrendRow {
                        day,
                        camera: CameraId::new(cam).ok()?,
                        label,
                        count: v[0].max(0) as u64,
                    })
                })
                .collect())
        })
        .await
    }

    async fn recording(&self, id: RecordingId) -> vigil_core::Result<Option<Recording>> {
        self.read(move |t, r| t.recordings.get(r, id.0)).await
    }
    async fn recording_by_path(&self, path: &str) -> vigil_core::Result<Option<Recording>> {
        let p = path.to_owned();
        self.read(move |t, r| t.recordings.find_one(r, rec::PATH, &p))
            .await
    }
    async fn recordings(&self, q: &Query<RecordingFilter>) -> vigil_core::Result<Page<Recording>> {
        self.query(|t| &t.recordings, recording_plan(&q.filter), q)
            .await
    }
    async fn recording_stats(&self, top: usize) -> vigil_core::Result<RecordingStats> {
        self.read(move |t, r| {
            let mut s = RecordingStats::default();
            t.recordings.agg_scan(r, &[rec::BY_CAMERA], |k, v| {
                let Ok(cam) = CameraId::new(String::from_utf8_lossy(k)) else {
                    return;
                };
                let c = CameraRecordingStats {
                    count: v[0].max(0) as u64,
                    duration_us: v[1],
                    size_bytes: v[2].max(0) as u64,
                };
                s.total.count += c.count;
                s.total.duration_us += c.duration_us;
                s.total.size_bytes += c.size_bytes;
                s.by_camera.insert(cam, c);
            })?;
            if let Some((a, b)) = t.recordings.time_bounds(r, None)? {
                s.oldest = Some(Timestamp(a));
                s.newest = Some(Timestamp(b));
            }
            s.objects = t.recordings.term_counts(r, rec::LABEL)?;
            let mut trackers = Vec::new();
            t.recordings.agg_scan(r, &[rec::TRACKERS], |k, v| {
                if let Ok(b) = <[u8; 8]>::try_from(k) {
                    trackers.push((u64::from_be_bytes(b), v[0].max(0) as u64));
                }
            })?;
            s.unique_tracker_ids = trackers.len() as u64;
            trackers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            trackers.truncate(top);
            s.most_frequent_trackers = trackers;
            Ok(s)
        })
        .await
    }

    async fn snapshot(&self, id: SnapshotId) -> vigil_core::Result<Option<Snapshot>> {
        self.read(move |t, r| t.snapshots.get(r, id.0)).await
    }
    async fn snapshots(&self, q: &Query<SnapshotFilter>) -> vigil_core::Result<Page<Snapshot>> {
        self.query(|t| &t.snapshots, snapshot_plan(&q.filter), q)
            .await
    }
    async fn timelapse_frame(
        &self,
        id: TimelapseFrameId,
    ) -> vigil_core::Result<Option<TimelapseFrame>> {
        self.read(move |t, r| t.timelapse.get(r, id.0)).await
    }
    async fn timelapse_frames(
        &self,
        q: &Query<TimelapseFilter>,
    ) -> vigil_core::Result<Page<TimelapseFrame>> {
        self.query(|t| &t.timelapse, timelapse_plan(&q.filter), q)
            .await
    }

    async fn audit_entry(&self, id: AuditId) -> vigil_core::Result<Option<AuditEntry>> {
        self.read(move |t, r| t.audit.get(r, id.0)).await
    }
    async fn audit_entries(&self, q: &Query<AuditFilter>) -> vigil_core::Result<Page<AuditEntry>> {
        self.query(|t| &t.audit, audit_plan(&q.filter), q).await
    }
    async fn audit_counts(&self) -> vigil_core::Result<AuditCounts> {
        self.read(|t, r| {
            Ok(AuditCounts {
                total: t.audit.len(r)?,
                by_action: t.audit.term_counts(r, audit::ACTION)?,
                by_actor: t.audit.term_counts(r, audit::ACTOR)?,
                by_outcome: t.audit.term_counts(r, audit::OUTCOME)?,
            })
        })
        .await
    }
    async fn log_entry(&self, id: LogId) -> vigil_core::Result<Option<LogEntry>> {
        self.read(move |t, r| t.logs.get(r, id.0)).await
    }
    async fn log_entries(&self, q: &Query<LogFilter>) -> vigil_core::Result<Page<LogEntry>> {
        self.query(|t| &t.logs, log_plan(&q.filter), q).await
    }
    async fn log_counts(&self) -> vigil_core::Result<LogCounts> {
        self.read(|t, r| {
            Ok(LogCounts {
                total: t.logs.len(r)?,
                by_level: t.logs.term_counts(r, log::LEVEL)?,
                by_source: t.logs.term_counts(r, log::SOURCE)?,
            })
        })
        .await
    }
}
