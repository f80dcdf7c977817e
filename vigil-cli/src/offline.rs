//! The commands of `vigil` that work on files, with no vigild running: `detect` on an image,
//! `model fetch|list|run`, `check` of a data directory and `bench` of the detector backends.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use serde_json::{json, Value};
use vigil_core::{Detector, Image, Mutation, PixelFormat, Store, Timestamp};
use vigil_detect::registry::{Backend, DetectorRegistry, DetectorSpec};

use crate::client::{CliError, CliResult, Failure};
use crate::output::{bytes, Table};
use crate::remote::{print_json, Format};

/// Reads a secret from standard input: asked for, without echo, on a terminal; the first line
/// otherwise (so scripts can pipe it in).
pub fn read_secret(prompt: &str) -> CliResult<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return crate::remote::read_line_stdin();
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let saved = rustix::termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut s = String::new();
    let r = stdin.lock().read_line(&mut s);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
    }
    eprintln!();
    r?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

fn now() -> Timestamp {
    Timestamp(jiff::Timestamp::now().as_microsecond())
}

fn runtime() -> CliResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::from)
}

fn detect_error(e: vigil_core::Error) -> CliError {
    let kind = match e.kind() {
        vigil_core::ErrorKind::InvalidArgument | vigil_core::ErrorKind::DataLoss => {
            Failure::BadInput
        }
        vigil_core::ErrorKind::NotFound => Failure::NotFound,
        _ => Failure::Other,
    };
    CliError::new(kind, e.to_string())
}

// --- detect

/// `vigil detect`'s arguments.
#[derive(Args, Debug)]
pub struct DetectArgs {
    /// The picture (JPEG).
    pub image: PathBuf,
    /// YOLOv8 weights (safetensors; `vigil model fetch yolov8n` gets some).
    #[arg(long, env = "VIGIL_MODEL")]
    pub model: PathBuf,
    /// The detector's kind (`yolov8`, or one a program registered).
    #[arg(long, default_value = "yolov8")]
    pub kind: String,
    /// Square input size (a multiple of 32): 320 is fast, 640 finds smaller objects.
    #[arg(long, default_value_t = 640)]
    pub input_size: u32,
    /// Lowest score reported.
    #[arg(long, default_value_t = 0.25)]
    pub min_score: f32,
    /// Where to write the picture with boxes and labels [default: IMAGE.detections.jpg].
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `vigil detect IMAGE`.
pub fn detect(a: &DetectArgs, f: Format) -> CliResult<()> {
    if !(0.0..=1.0).contains(&a.min_score) {
        return Err(CliError::bad_input(format!(
            "--min-score {}: must be within 0..=1",
            a.min_score
        )));
    }
    let jpeg = std::fs::read(&a.image)
        .map_err(|e| CliError::bad_input(format!("cannot read {}: {e}", a.image.display())))?;
    let pic = vigil_detect::render::decode_jpeg(&jpeg).map_err(|e| {
        CliError::bad_input(format!(
            "{}: {} (vigil detect reads JPEG pictures)",
            a.image.display(),
            e.message()
        ))
    })?;
    let mut reg = DetectorRegistry::new();
    reg.add(
        "cli",
        &DetectorSpec {
            kind: a.kind.clone(),
            model: Some(a.model.clone()),
            input_size: Some(a.input_size),
            min_score: Some(a.min_score),
            labels: None,
        },
    )
    .map_err(detect_error)?;
    let Some(Backend::Model(det)) = reg.get("cli").cloned() else {
        return Err(CliError::bad_input(format!(
            "--kind {}: finds motion between frames, not objects in one picture",
            a.kind
        )));
    };
    let image = Arc::new(Image {
        width: pic.width,
        height: pic.height,
        format: PixelFormat::Rgb8,
        data: Arc::from(pic.data.as_slice()),
        time: now(),
    });
    let started = Instant::now();
    let found = runtime()?
        .block_on(det.detect(image))
        .map_err(detect_error)?;
    let took = started.elapsed();
    let objects: Vec<vigil_detect::Annotation> = found
        .iter()
        .map(|d| vigil_detect::Annotation {
            bbox: d.bbox,
            label: d.label.clone(),
            score: d.score,
        })
        .collect();
    let drawn = vigil_detect::render_detections(&pic, &objects, 90).map_err(detect_error)?;
    let out = a.output.clone().unwrap_or_else(|| {
        let stem = a
            .image
            .file_stem()
            .map_or_else(|| "image".to_owned(), |s| s.to_string_lossy().into_owned());
        a.image.with_file_name(format!("{stem}.detections.jpg"))
    });
    std::fs::write(&out, drawn)
        .map_err(|e| CliError::other(format!("cannot write {}: {e}", out.display())))?;
    let (w, h) = (pic.width as f32, pic.height as f32);
    if f == Format::Json {
        let dets: Vec<Value> = found
            .iter()
            .map(|d| {
                json!({
                    "label": d.label,
                    "score": d.score,
                    "box": [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
                    "box_px": [d.bbox.x1 * w, d.bbox.y1 * h, d.bbox.x2 * w, d.bbox.y2 * h],
                })
            })
            .collect();
        return print_json(&json!({
            "detector": det.info().name,
            "image": a.image,
            "width": pic.width,
            "height": pic.height,
            "inference_ms": took.as_secs_f64() * 1e3,
            "detections": dets,
            "output": out,
        }));
    }
    let mut t = Table::new(&["LABEL", "SCORE", "X1", "Y1", "X2", "Y2"]);
    for d in &found {
        t.row(vec![
            d.label.clone(),
            format!("{:.2}", d.score),
            format!("{:.0}", d.bbox.x1 * w),
            format!("{:.0}", d.bbox.y1 * h),
            format!("{:.0}", d.bbox.x2 * w),
            format!("{:.0}", d.bbox.y2 * h),
        ]);
    }
    t.print();
    eprintln!(
        "{} objects in {}x{} by {} in {:.0} ms; drawn in {}",
        found.len(),
        pic.width,
        pic.height,
        det.info().name,
        took.as_secs_f64() * 1e3,
        out.display()
    );
    Ok(())
}

// --- model

/// The sizes `vigil model fetch` knows, with their approximate size and COCO mAP.
const MODELS: [(&str, &str, &str); 5] = [
    ("yolov8n", "6 MiB", "37.3"),
    ("yolov8s", "21 MiB", "44.9"),
    ("yolov8m", "50 MiB", "50.2"),
    ("yolov8l", "84 MiB", "52.9"),
    ("yolov8x", "131 MiB", "53.9"),
];

/// `vigil model fetch NAME`.
pub fn model_fetch(req: crate::fetch::FetchRequest, f: Format) -> CliResult<()> {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal() && f == Format::Human;
    let mut bar: Option<crate::output::Progress> = None;
    let mut last = 0u64;
    let name = format!("{}.safetensors", req.name);
    let mut progress = |n: u64, total: Option<u64>| {
        if !tty {
            return;
        }
        let b = bar.get_or_insert_with(|| crate::output::Progress::new(&name, total));
        b.add(n.saturating_sub(last));
        last = n;
    };
    let got = crate::fetch::fetch(&req, &mut progress).map_err(|e| {
        let text = format!("{e:#}");
        // The network's failures are exit 5; a bad name or checksum is the user's input; a
        // disk that cannot take the file is anything else.
        let kind = if e.chain().any(|c| c.downcast_ref::<ureq::Error>().is_some())
            || text.contains(" answered HTTP ")
            || text.contains(" ended after ")
            || text.contains("redirect")
        {
            Failure::Unreachable
        } else if text.starts_with("unknown model") || text.starts_with("--sha256") {
            Failure::BadInput
        } else {
            Failure::Other
        };
        CliError::new(kind, text)
    })?;
    if let Some(b) = &mut bar {
        b.finish();
    }
    if f == Format::Json {
        return print_json(&json!({
            "path": got.path,
            "sha256": got.sha256,
            "bytes": got.bytes,
            "downloaded": got.downloaded,
        }));
    }
    eprintln!(
        "{} {} ({}, SHA-256 {})",
        if got.downloaded {
            "fetched"
        } else {
            "already there:"
        },
        got.path.display(),
        bytes(got.bytes),
        got.sha256
    );
    println!("{}", got.path.display());
    Ok(())
}

/// `vigil model list`: what can be fetched, and what the model directory holds (each file
/// loaded to tell its size and classes).
pub fn model_list(dir: &Path, f: Format) -> CliResult<()> {
    let mut local = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        paths.sort();
        for p in paths {
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            let model = vigil_detect::YoloV8::load(&p);
            local.push(json!({
                "path": p,
                "bytes": size,
                "model": model.as_ref().ok().map(|m| format!("yolov8{}", m.size().name())),
                "classes": model.as_ref().ok().map(|m| m.classes()),
                "error": model.as_ref().err().map(|e| e.message().to_owned()),
            }));
        }
    }
    if f == Format::Json {
        let known: Vec<Value> = MODELS
            .iter()
            .map(|(n, s, m)| json!({"name": n, "size": s, "coco_map50_95": m}))
            .collect();
        return print_json(&json!({"fetchable": known, "dir": dir, "local": local}));
    }
    let mut t = Table::new(&["MODEL", "SIZE", "COCO mAP50-95", "IN DIR"]);
    for (n, s, m) in MODELS {
        let here = local.iter().any(|l| {
            l["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("{n}.safetensors")))
        });
        t.row(vec![
            n.to_owned(),
            s.to_owned(),
            m.to_owned(),
            if here {
                dir.display().to_string()
            } else {
                "-".into()
            },
        ]);
    }
    t.print();
    if local.is_empty() {
        eprintln!(
            "no weights in {}; `vigil model fetch yolov8n` gets the smallest",
            dir.display()
        );
    } else {
        println!();
        let mut t = Table::new(&["FILE", "BYTES", "MODEL", "CLASSES"]);
        for l in &local {
            t.row(vec![
                crate::output::cell(&l["path"]),
                bytes(l["bytes"].as_u64().unwrap_or(0)),
                match l["error"].as_str() {
                    Some(e) => format!("unusable: {e}"),
                    None => crate::output::cell(&l["model"]),
                },
                crate::output::cell(&l["classes"]),
            ]);
        }
        t.print();
    }
    Ok(())
}

/// `vigil model run`: the raw network on a tensor file.
pub fn model_run(model: &Path, input: &Path, output: &Path) -> CliResult<()> {
    let started = Instant::now();
    let m = vigil_detect::yolo::run_safetensors(model, input, output).map_err(detect_error)?;
    eprintln!(
        "yolov8{} with {} classes on {} threads: wrote {} in {:.1} ms",
        m.size().name(),
        m.classes(),
        m.threads(),
        output.display(),
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}

// --- check

/// `vigil check`'s arguments.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The data directory of the vigild installation.
    #[arg(env = "VIGIL_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Repair what is found (vigild must be stopped): finish interrupted segment commits
    /// and deletions, forget recordings whose file is gone, move files no record names to
    /// recordings/.orphans/ (no footage is deleted), and clear snapshot flags of events whose
    /// snapshot file is gone.
    #[arg(long)]
    pub repair: bool,
    /// Also read every segment's MP4 structure (slower: reads each file's boxes).
    #[arg(long)]
    pub full: bool,
    /// Repair even when most recordings' files seem gone (without it, --repair refuses:
    /// that is more often an unmounted disk than lost footage).
    #[arg(long, requires = "repair")]
    pub force: bool,
}

/// One disagreement between the store and the files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Finding {
    kind: &'static str,
    path: String,
    detail: String,
    repaired: bool,
}

/// Pages through every item of a store listing.
async fn all<T, F, Fut>(mut page: F) -> vigil_core::Result<Vec<T>>
where
    F: FnMut(vigil_core::PageRequest) -> Fut,
    Fut: std::future::Future<Output = vigil_core::Result<vigil_core::Page<T>>>,
{
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let p = page(vigil_core::PageRequest {
            limit: vigil_core::query::MAX_PAGE_LIMIT,
            cursor: cursor.take(),
            ..Default::default()
        })
        .await?;
        out.extend(p.items);
        match p.next_cursor {
            Some(c) if p.has_more => cursor = Some(c),
            _ => return Ok(out),
        }
    }
}

/// Every file under `dir`, relative to `base`, with `/` separators; directories whose name
/// starts with `.` (the recorder's `.open`, `.trash`, `.orphans`) are left out.
fn files_under(base: &Path, dir: &Path, out: &mut BTreeSet<String>) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd {
        let e = e?;
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        // `is_dir` follows links: a camera's folder may be a link to another disk.
        if p.is_dir() {
            if !name.starts_with('.') {
                files_under(base, &p, out)?;
            }
        } else if let Ok(rel) = p.strip_prefix(base) {
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

/// Moves `rel` (under `data`) into `recordings/.orphans/`, never over a file already there;
/// returns where it went, relative to `data`.
fn move_aside(data: &Path, rel: &str) -> std::io::Result<String> {
    let dir = data.join("recordings").join(".orphans");
    std::fs::create_dir_all(&dir)?;
    let base = rel.replace('/', "~");
    for n in 0..1000 {
        let name = if n == 0 {
            base.clone()
        } else {
            format!("{base}.{n}")
        };
        let to = dir.join(&name);
        if to.symlink_metadata().is_ok() {
            continue;
        }
        std::fs::rename(data.join(rel), &to)?;
        return Ok(format!("recordings/.orphans/{name}"));
    }
    Err(std::io::Error::other(
        "1000 files of that name are already there",
    ))
}

fn count_dir(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.filter_map(Result::ok).count())
}

/// `vigil check DATA_DIR`: exit 0 when store and files agree (or all was repaired), 1 when
/// something was found and left.
pub fn check(a: &CheckArgs, f: Format) -> CliResult<()> {
    let data = &a.data_dir;
    let dir = crate::store_dir(data);
    if !dir.join("data.mdb").exists() {
        return Err(CliError::new(
            Failure::NotFound,
            format!(
                "no store in {} (expected {})",
                data.display(),
                dir.join("data.mdb").display()
            ),
        ));
    }
    let _lock = if a.repair {
        Some(crate::DataDirLock::acquire(data).map_err(|e| {
            CliError::new(
                Failure::Busy,
                format!("{e}: stop vigild before `vigil check --repair`"),
            )
        })?)
    } else {
        None
    };
    let running = !a.repair && crate::DataDirLock::held(data);
    let rt = runtime()?;
    let (findings, summary) = rt.block_on(check_store(a, &dir))?;
    // While vigild runs, segments being written are pending by nature.
    let left = findings
        .iter()
        .filter(|x| {
            let expected = running && x.kind.starts_with("pending-");
            !(x.repaired || expected)
        })
        .count();
    if f == Format::Json {
        let items: Vec<Value> = findings
            .iter()
            .map(|x| json!({"kind": x.kind, "path": x.path, "detail": x.detail, "repaired": x.repaired}))
            .collect();
        print_json(&json!({
            "data_dir": data,
            "vigild_running": running,
            "summary": summary,
            "findings": items,
            "ok": left == 0,
        }))?;
    } else {
        println!(
            "store {} (schema {}): {} cameras, {} recordings ({}), {} events, {} snapshots",
            dir.display(),
            vigil_store::SCHEMA_VERSION,
            summary["cameras"],
            summary["recordings"],
            bytes(summary["recording_bytes"].as_u64().unwrap_or(0)),
            summary["events"],
            summary["snapshots"],
        );
        if running {
            eprintln!(
                "vigild is running on this data directory: segments being written may show as \
                 pending; stop it to repair"
            );
        }
        if findings.is_empty() {
            println!("store and files agree");
        } else {
            let mut t = Table::new(&["PROBLEM", "PATH", "DETAIL", "REPAIRED"]);
            for x in &findings {
                t.row(vec![
                    x.kind.to_owned(),
                    x.path.clone(),
                    x.detail.clone(),
                    if x.repaired { "yes" } else { "no" }.to_owned(),
                ]);
            }
            t.print();
            if left > 0 && !a.repair {
                eprintln!(
                    "{left} problems; `vigil check --repair` (with vigild stopped) repairs them"
                );
            }
        }
    }
    if left > 0 {
        return Err(CliError::other(format!(
            "{left} disagreements between the store and the files"
        )));
    }
    Ok(())
}

async fn check_store(a: &CheckArgs, dir: &Path) -> CliResult<(Vec<Finding>, Value)> {
    use vigil_core::query::{EventFilter, Query, RecordingFilter, SnapshotFilter};
    let data = &a.data_dir;
    let store: Arc<dyn Store> = Arc::new(
        vigil_store::LmdbStore::open(dir, vigil_store::StoreOptions::default())
            .map_err(|e| CliError::other(format!("opening the store in {}: {e}", dir.display())))?,
    );
    let err = |e: vigil_core::Error| CliError::other(format!("reading the store: {e}"));
    let mut findings = Vec::new();

    // Interrupted commits and deletions: what vigild's start-up would finish.
    use vigil_core::pipeline::recorder::{open_dir, parse_open_name, trash_dir};
    let open = count_dir(&open_dir(data));
    let trash = count_dir(&trash_dir(data));
    if a.repair && open + trash > 0 {
        let r = vigil_core::pipeline::recorder::reconcile(data, store.as_ref())
            .await
            .map_err(err)?;
        let detail = format!(
            "{} placed, {} salvaged, {} empty removed, {} deletions finished",
            r.placed, r.salvaged, r.removed, r.trashed
        );
        findings.push(Finding {
            kind: "interrupted-commit",
            path: "recordings/.open, recordings/.trash".into(),
            detail,
            repaired: true,
        });
    } else {
        if open > 0 {
            findings.push(Finding {
                kind: "pending-segment",
                path: "recordings/.open".into(),
                detail: format!("{open} segments not yet committed (or being written)"),
                repaired: false,
            });
        }
        if trash > 0 {
            findings.push(Finding {
                kind: "pending-deletion",
                path: "recordings/.trash".into(),
                detail: format!("{trash} deletions not yet finished"),
                repaired: false,
            });
        }
    }

    let recs = all(|page| {
        let s = store.clone();
        async move {
            let mut q = Query::new(RecordingFilter::default());
            q.page = page;
            s.recordings(&q).await
        }
    })
    .await
    .map_err(err)?;
    // Segments still in recordings/.open: committed or being written (vigild running).
    let open_ids: BTreeSet<u64> = std::fs::read_dir(open_dir(data))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| parse_open_name(e.file_name().to_str()?).map(|(_, id, ..)| id.0))
                .collect()
        })
        .unwrap_or_default();
    let mut known: BTreeSet<String> = BTreeSet::new();
    let mut rec_bytes = 0u64;
    let mut problems = Vec::new();
    for r in &recs {
        rec_bytes += r.size_bytes;
        known.insert(r.path.clone());
        for p in [&r.thumbnail_path, &r.sprite_path].into_iter().flatten() {
            known.insert(p.clone());
        }
        let path = data.join(&r.path);
        let problem = match std::fs::metadata(&path) {
            // Committed, its file not yet moved into place: what start-up (or --repair)
            // finishes.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && open_ids.contains(&r.id.0) => {
                None
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some(("missing-file", "the record's file is gone".to_owned()))
            }
            Err(e) => Some(("unreadable-file", e.to_string())),
            Ok(m) if m.len() < r.size_bytes => Some((
                "short-file",
                format!("{} bytes, the record says {}", m.len(), r.size_bytes),
            )),
            Ok(_) if a.full => match vigil_core::mp4::salvage(&path) {
                Ok(Some(info)) if info.samples.len() as u32 >= r.frames => None,
                Ok(Some(info)) => Some((
                    "short-file",
                    format!(
                        "{} frames, the record says {}",
                        info.samples.len(),
                        r.frames
                    ),
                )),
                Ok(None) => Some(("bad-file", "no complete fragment".to_owned())),
                Err(e) => Some(("bad-file", e.to_string())),
            },
            Ok(_) => None,
        };
        if let Some((kind, detail)) = problem {
            problems.push((r, kind, detail));
        }
    }
    let missing = problems
        .iter()
        .filter(|(_, k, _)| *k == "missing-file")
        .count();
    if a.repair && !a.force && missing > 0 && missing * 2 > recs.len() && missing > 3 {
        return Err(CliError::other(format!(
            "{missing} of {} recordings' files are gone: is the disk holding {} mounted? \
             Nothing was changed; --force repairs anyway (forgets those recordings)",
            recs.len(),
            data.join("recordings").display()
        )));
    }
    for (r, kind, detail) in problems {
        // A file that is gone is footage already lost: forget its record. A short or
        // unreadable file is kept and reported; its record still serves what it holds.
        let repaired = a.repair && kind == "missing-file" && {
            store
                .apply(Mutation::DeleteRecording(r.id).into())
                .await
                .map_err(err)?;
            // Its thumbnail and sprite sheet are made from it: nothing to keep them for.
            for p in [&r.thumbnail_path, &r.sprite_path].into_iter().flatten() {
                let _ = std::fs::remove_file(data.join(p));
            }
            true
        };
        findings.push(Finding {
            kind,
            path: r.path.clone(),
            detail,
            repaired,
        });
    }

    let events = all(|page| {
        let s = store.clone();
        async move {
            let mut q = Query::new(EventFilter::default());
            q.page = page;
            s.events(&q).await
        }
    })
    .await
    .map_err(err)?;
    for e in &events {
        let Some(best) = &e.best else { continue };
        for p in [&best.snapshot_path, &best.thumbnail_path]
            .into_iter()
            .flatten()
        {
            known.insert(p.clone());
        }
        let Some(snap) = best.snapshot_path.as_ref().filter(|_| e.has_snapshot) else {
            continue;
        };
        if data.join(snap).exists() {
            continue;
        }
        let repaired = a.repair && {
            let mut fixed = e.clone();
            fixed.has_snapshot = false;
            store
                .apply(Mutation::PutEvent(Box::new(fixed)).into())
                .await
                .map_err(err)?;
            true
        };
        findings.push(Finding {
            kind: "missing-snapshot",
            path: snap.clone(),
            detail: format!("event {}", e.id),
            repaired,
        });
    }

    let snaps = all(|page| {
        let s = store.clone();
        async move {
            let mut q = Query::new(SnapshotFilter::default());
            q.page = page;
            s.snapshots(&q).await
        }
    })
    .await
    .map_err(err)?;
    for s in &snaps {
        known.insert(s.path.clone());
        if !data.join(&s.path).exists() {
            // The picture is gone: a record of it serves nothing.
            let repaired = a.repair && {
                store
                    .apply(Mutation::DeleteSnapshot(s.id).into())
                    .await
                    .map_err(err)?;
                true
            };
            findings.push(Finding {
                kind: "missing-file",
                path: s.path.clone(),
                detail: format!("snapshot {}", s.id),
                repaired,
            });
        }
    }

    // Files no record names. A segment's art whose segment is known is not an orphan (the
    // art task names it in the record a moment later).
    let mut files = BTreeSet::new();
    files_under(data, &data.join("recordings"), &mut files)?;
    for f in files.difference(&known) {
        let segment = f
            .strip_suffix(".thumb.jpg")
            .or_else(|| f.strip_suffix(".sprite.jpg"))
            .map(|stem| format!("{stem}.mp4"));
        if segment.as_ref().is_some_and(|s| known.contains(s)) {
            continue;
        }
        let art = segment.is_some();
        let (repaired, detail) = if !a.repair {
            let d = if art {
                "a segment's art without its segment (--repair removes it)"
            } else {
                "no record names it (--repair moves it to recordings/.orphans)"
            };
            (false, d.to_owned())
        } else if art {
            // Made from a segment that is gone: worth nothing alone.
            match std::fs::remove_file(data.join(f)) {
                Ok(()) => (true, "a segment's art without its segment: removed".into()),
                Err(e) => (false, format!("cannot remove it: {e}")),
            }
        } else {
            match move_aside(data, f) {
                Ok(to) => (true, format!("no record names it: moved to {to}")),
                Err(e) => (
                    false,
                    format!("no record names it; cannot move it aside: {e}"),
                ),
            }
        };
        findings.push(Finding {
            kind: "orphan-file",
            path: f.clone(),
            detail,
            repaired,
        });
    }

    let cams = store.cameras().await.map_err(err)?;
    let summary = json!({
        "cameras": cams.len(),
        "recordings": recs.len(),
        "recording_bytes": rec_bytes,
        "events": events.len(),
        "snapshots": snaps.len(),
    });
    findings.sort();
    Ok((findings, summary))
}

// --- bench

/// `vigil bench`'s arguments.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// YOLOv8 weights to measure (repeat for several); without any, yolov8n with random
    /// weights (its speed is the real network's: the arithmetic is the same).
    #[arg(long)]
    pub model: Vec<PathBuf>,
    /// Input sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "320,640")]
    pub input_size: Vec<u32>,
    /// Timed runs per case (after two untimed ones).
    #[arg(long, default_value_t = 10)]
    pub runs: u32,
    /// Threads for the network [default: every core].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A 1280x720 RGB picture with some structure (gradients and blocks), for timing.
fn bench_picture() -> (u32, u32, Vec<u8>) {
    let (w, h) = (1280u32, 720u32);
    let mut v = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let block = ((x / 80 + y / 80) % 2) as u8 * 60;
            v.extend_from_slice(&[
                (x * 255 / w) as u8 ^ block,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    (w, h, v)
}

fn stats_ms(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let n = samples.len().max(1);
    let mean = samples.iter().sum::<f64>() / n as f64;
    let median = samples.get(n / 2).copied().unwrap_or(0.0);
    let p90 = samples
        .get(((n as f64 * 0.9).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    (mean, median, p90)
}

/// `vigil bench`: each detector backend on this machine, one picture at a time.
pub fn bench(a: &BenchArgs, f: Format) -> CliResult<()> {
    if a.runs == 0 {
        return Err(CliError::bad_input("--runs must be at least 1"));
    }
    let mut models = Vec::new();
    if a.model.is_empty() {
        let m = vigil_detect::YoloV8::random('n', 80, 0).map_err(detect_error)?;
        models.push(("yolov8n (random weights)".to_owned(), m));
    }
    for p in &a.model {
        let m = vigil_detect::YoloV8::load(p).map_err(detect_error)?;
        models.push((format!("yolov8{} ({})", m.size().name(), p.display()), m));
    }
    let (w, h, rgb) = bench_picture();
    let image = Arc::new(Image {
        width: w,
        height: h,
        format: PixelFormat::Rgb8,
        data: Arc::from(rgb.as_slice()),
        time: now(),
    });
    let rt = runtime()?;
    let mut rows = Vec::new();
    for (name, mut model) in models {
        if let Some(t) = a.threads {
            model.set_threads(t).map_err(detect_error)?;
        }
        let threads = model.threads();
        let model = Arc::new(model);
        for &size in &a.input_size {
            let det = vigil_detect::YoloDetector::new(
                model.clone(),
                vigil_detect::YoloOptions {
                    input_size: size,
                    ..Default::default()
                },
            )
            .map_err(detect_error)?;
            let mut samples = Vec::new();
            for i in 0..a.runs + 2 {
                let t = Instant::now();
                rt.block_on(det.detect(image.clone()))
                    .map_err(detect_error)?;
                if i >= 2 {
                    samples.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let (mean, median, p90) = stats_ms(samples);
            rows.push(json!({
                "backend": format!("{name}, candle tensors with vigil kernels"),
                "input": size,
                "threads": threads,
                "mean_ms": mean,
                "median_ms": median,
                "p90_ms": p90,
                "fps": 1e3 / median.max(1e-9),
            }));
        }
    }
    // Motion: the frame-difference detector that runs on every frame.
    {
        let mut m = vigil_detect::MotionDetector::new(vigil_detect::MotionOptions::default())
            .map_err(detect_error)?;
        let frames: Vec<Image> = (0..2u8)
            .map(|k| Image {
                width: w,
                height: h,
                format: PixelFormat::Gray8,
                data: Arc::from(
                    rgb.chunks_exact(3)
                        .map(|p| p[0].wrapping_add(k * 40))
                        .collect::<Vec<u8>>(),
                ),
                time: now(),
            })
            .collect();
        let mut samples = Vec::new();
        let runs = a.runs.max(20) + 2;
        for i in 0..runs {
            let t = Instant::now();
            m.detect(&frames[(i % 2) as usize]).map_err(detect_error)?;
            if i >= 2 {
                samples.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let (mean, median, p90) = stats_ms(samples);
        rows.push(json!({
            "backend": "motion",
            "input": h,
            "threads": 1,
            "mean_ms": mean,
            "median_ms": median,
            "p90_ms": p90,
            "fps": 1e3 / median.max(1e-9),
        }));
    }
    if f == Format::Json {
        return print_json(&json!({
            "picture": format!("{w}x{h}"),
            "runs": a.runs,
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "results": rows,
        }));
    }
    eprintln!(
        "{w}x{h} picture, {} timed runs each, {} cores",
        a.runs,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut t = Table::new(&[
        "BACKEND",
        "INPUT",
        "THREADS",
        "MEAN ms",
        "MEDIAN ms",
        "P90 ms",
        "FPS",
    ]);
    for r in &rows {
        let ms = |k: &str| format!("{:.1}", r[k].as_f64().unwrap_or(0.0));
        t.row(vec![
            crate::output::cell(&r["backend"]),
            crate::output::cell(&r["input"]),
            crate::output::cell(&r["threads"]),
            ms("mean_ms"),
            ms("median_ms"),
            ms("p90_ms"),
            format!("{:.1}", r["fps"].as_f64().unwrap_or(0.0)),
        ]);
    }
    t.print();
    Ok(())
}
