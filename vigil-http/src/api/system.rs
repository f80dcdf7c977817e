//! Health, readiness, version, statistics (Frigate's `/api/stats`, SpectraX's `/status`,
//! HSI's system stats), storage and cleanup (HSI's and picam's), alert levels, the detector
//! registry as HSI's model zoo, the configuration, and Prometheus metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::pipeline::{CameraStatus, DiskBudget};
use vigil_core::{CameraConfig, CameraId, DetectionFilter, EventFilter, Query};

use super::{value_of, GET, PATCH, POST};
use crate::error::ApiError;
use crate::reply::{bytes, ok, text, Reply};
use crate::router::{Ctx, Router};
use crate::API_VERSION;

pub(super) fn routes(r: &mut Router) {
    r.add(
        GET,
        "/health",
        "system",
        "Liveness: the process answers",
        health,
    );
    r.add(
        GET,
        "/ready",
        "system",
        "Readiness: the store answers",
        ready,
    );
    r.add(
        GET,
        "/api/system/health/ready",
        "system",
        "Readiness: the store answers",
        ready,
    );
    r.add(
        GET,
        "/api/system/health",
        "system",
        "Health of the store, each camera and each detector",
        health_detail,
    );
    r.add(
        GET,
        "/api/version",
        "system",
        "Version, as plain text (Frigate's form)",
        version,
    );
    r.add(
        GET,
        "/api/stats",
        "system",
        "Per-camera rates, detectors, service (Frigate's fields)",
        frigate_stats,
    );
    r.add(
        GET,
        "/status",
        "system",
        "Running state, per-camera fps and objects (SpectraX)",
        spectrax_status,
    );
    r.add(
        GET,
        "/api/system/stats",
        "system",
        "Totals: cameras, events, detections, recordings, uptime",
        system_stats,
    );
    r.add(
        GET,
        "/api/system/storage",
        "storage",
        "Disk use, per camera, the budget",
        storage,
    );
    r.add(
        GET,
        "/storage/status",
        "storage",
        "Disk use, threshold, auto-delete (picam)",
        storage,
    );
    r.add(
        POST,
        "/api/system/cleanup",
        "storage",
        "Delete unretained recordings before a time, or run retention now",
        cleanup,
    );
    r.add(
        POST,
        "/storage/cleanup",
        "storage",
        "Run retention now (picam)",
        cleanup,
    );
    r.add(
        POST,
        "/storage/configure",
        "storage",
        "Set the disk budget: {enabled, max_percent} (picam)",
        configure_storage,
    );
    r.add(
        GET,
        "/api/system/severity",
        "system",
        "Risk severity levels and their score ranges",
        severity,
    );
    r.add(
        GET,
        "/system_alert_state",
        "system",
        "ok/warn/critical per metric (picam)",
        alert_state,
    );
    r.add(
        GET,
        "/api/system/alerts",
        "system",
        "ok/warn/critical per metric",
        alert_state,
    );
    r.add(
        GET,
        "/deploy_info",
        "system",
        "Build and version (picam)",
        deploy_info,
    );
    r.add(
        GET,
        "/system_info",
        "system",
        "Host, build and process facts (picam)",
        system_info,
    );
    r.add(
        GET,
        "/api/system/models",
        "models",
        "The detector registry (HSI's model zoo)",
        models,
    );
    r.add(
        GET,
        "/api/system/models/{name}",
        "models",
        "One detector and its figures",
        model,
    );
    r.add(
        GET,
        "/api/system/model-zoo/status",
        "models",
        "Compact detector status",
        model_zoo_status,
    );
    r.add(
        GET,
        "/api/config",
        "system",
        "The configuration in Frigate's shape (Home Assistant reads it)",
        frigate_config,
    );
    r.add(
        GET,
        "/api/system/config",
        "system",
        "The configuration in force",
        system_config,
    );
    r.add(
        PATCH,
        "/api/system/config",
        "system",
        "Change what can change at run time (the disk budget)",
        patch_system_config,
    );
    r.add(GET, "/metrics", "system", "Prometheus metrics", metrics);
    r.add(
        GET,
        "/api/system/services",
        "services",
        "Each camera pipeline and subsystem with its state",
        services,
    );
    r.add(
        POST,
        "/api/system/services/{name}/{action}",
        "services",
        "restart, start, enable or disable a service",
        service_action,
    );
    r.add(
        POST,
        "/system/restart",
        "services",
        "Restart every camera pipeline (picam)",
        restart_all,
    );
    r.add(
        GET,
        "/api/system/pipeline-latency",
        "services",
        "Per camera: capture to stored, by stage, over the last 5 minutes",
        pipeline_latency,
    );
    r.add(
        GET,
        "/api/system/model-zoo/latency/history",
        "models",
        "Each detector's inference time per minute over the last hour",
        latency_history,
    );
    r.add(
        GET,
        "/api/system/telemetry",
        "services",
        "Per-camera pipeline figures: stream, recorder, analysis",
        telemetry,
    );
}

async fn health(ctx: Ctx) -> Reply {
    ok(&json!({
        "status": "ok",
        "uptime_seconds": ctx.state.uptime().as_secs(),
    }))
}

async fn ready(ctx: Ctx) -> Reply {
    ctx.state.store().max_id().await?;
    ok(&json!({"status": "ready"}))
}

async fn version(_: Ctx) -> Reply {
    Ok(text(StatusCode::OK, API_VERSION))
}

/// Every camera with its status (when the system runs).
async fn cameras(ctx: &Ctx) -> Result<Vec<(CameraConfig, Option<CameraStatus>)>, ApiError> {
    let mut st = super::cameras::statuses(ctx).await;
    Ok(ctx
        .state
        .store()
        .cameras()
        .await?
        .into_iter()
        .map(|c| {
            let s = st.remove(&c.id);
            (c, s)
        })
        .collect())
}

/// Rates computed from counters between two reads at least a second apart.
#[derive(Default)]
pub(crate) struct Sampler {
    last: Mutex<Option<Sample>>,
}

#[derive(Clone)]
struct Sample {
    at: Instant,
    /// Analysed and skipped frames per camera.
    counts: BTreeMap<CameraId, (u64, u64)>,
    /// Process CPU seconds.
    cpu: f64,
    /// Rates computed at the last update.
    rates: BTreeMap<CameraId, (f64, f64)>,
    cpu_percent: f64,
}

/// Process CPU seconds (user + system), from /proc on Linux.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    (ticks(11) + ticks(12)) / 100.0
}

impl Sampler {
    /// Analysed and skipped frames per second per camera, and the process CPU percent.
    fn rates(
        &self,
        counts: BTreeMap<CameraId, (u64, u64)>,
    ) -> (BTreeMap<CameraId, (f64, f64)>, f64) {
        let now = Instant::now();
        let cpu = cpu_seconds();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.as_mut() {
            Some(prev) if now.duration_since(prev.at).as_secs_f64() >= 1.0 => {
                let dt = now.duration_since(prev.at).as_secs_f64();
                let mut rates = BTreeMap::new();
                for (id, (a, s)) in &counts {
                    let (pa, ps) = prev.counts.get(id).copied().unwrap_or((*a, *s));
                    rates.insert(
                        id.clone(),
                        (
                            a.saturating_sub(pa) as f64 / dt,
                            s.saturating_sub(ps) as f64 / dt,
                        ),
                    );
                }
                let cpu_percent = ((cpu - prev.cpu) / dt * 100.0).max(0.0);
                *prev = Sample {
                    at: now,
                    counts,
                    cpu,
                    rates: rates.clone(),
                    cpu_percent,
                };
                (rates, cpu_percent)
            }
            Some(prev) => (prev.rates.clone(), prev.cpu_percent),
            None => {
                *last = Some(Sample {
                    at: now,
                    counts,
                    cpu,
                    rates: BTreeMap::new(),
                    cpu_percent: 0.0,
                });
                (BTreeMap::new(), 0.0)
            }
        }
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

async fn frigate_stats(ctx: Ctx) -> Reply {
    let cams = cameras(&ctx).await?;
    let counts = cams
        .iter()
        .filter_map(|(c, s)| {
            let (_, a) = s.as_ref()?.analysis.as_ref()?;
            Some((
                c.id.clone(),
                (a.frames.saturating_sub(a.skipped), a.skipped),
            ))
        })
        .collect();
    let (rates, cpu_percent) = ctx.state.sampler().rates(counts);
    let pid = std::process::id();
    let detectors = ctx
        .state
        .detectors()
        .map(|r| r.figures())
        .unwrap_or_default();
    let has_model = !detectors.is_empty();
    let mut per_camera = serde_json::Map::new();
    for (c, s) in &cams {
        let camera_fps = s
            .as_ref()
            .and_then(|s| s.stream.as_ref())
            .map_or(0.0, |st| st.fps);
        let (frames_fps, skipped_fps) = rates.get(&c.id).copied().unwrap_or((0.0, 0.0));
        // Frames handed to the analysis come at the detect stream's rate; those due at the
        // detect fps are analysed.
        let process_fps = frames_fps.min(f64::from(c.detect.fps));
        let detecting = has_model && c.detect.enabled;
        per_camera.insert(
            c.id.to_string(),
            json!({
                "camera_fps": round2(camera_fps),
                "process_fps": round2(process_fps),
                "skipped_fps": round2(skipped_fps),
                "detection_fps": round2(if detecting { process_fps } else { 0.0 }),
                "detection_enabled": c.detect.enabled,
                "pid": pid,
                "capture_pid": pid,
                "ffmpeg_pid": pid,
                "audio_dBFS": 0.0,
                "audio_rms": 0.0,
            }),
        );
    }
    let mut dets = serde_json::Map::new();
    let mut total_detection_fps = 0.0;
    for (name, (info, f)) in &detectors {
        total_detection_fps += f.runs_per_second;
        dets.insert(
            name.clone(),
            json!({
                "inference_speed": round2(f.inference_ms),
                "detection_start": 0.0,
                "pid": pid,
                "model": info.name,
                "runs_per_second": round2(f.runs_per_second),
                "detections_per_second": round2(f.detections_per_second),
            }),
        );
    }
    let storage = match ctx.state.nvr() {
        Some(n) => n.retention().storage().await.ok(),
        None => None,
    };
    let mut storage_map = serde_json::Map::new();
    if let (Some(s), Some(dir)) = (storage, ctx.state.data_dir()) {
        let mb = |b: u64| round2(b as f64 / 1e6);
        storage_map.insert(
            dir.display().to_string(),
            json!({
                "total": mb(s.filesystem_bytes),
                "used": mb(s.filesystem_bytes.saturating_sub(s.available_bytes)),
                "free": mb(s.available_bytes),
                "mount_type": "",
            }),
        );
    }
    let mut out = serde_json::Map::new();
    // Frigate's documented shape has the cameras at the top level; newer clients (Home
    // Assistant's integration) read them under "cameras". Both are given.
    for (k, v) in &per_camera {
        if !matches!(
            k.as_str(),
            "cameras" | "detectors" | "service" | "cpu_usages" | "detection_fps"
        ) {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("cameras".into(), Value::Object(per_camera));
    out.insert("detectors".into(), Value::Object(dets));
    out.insert("detection_fps".into(), json!(round2(total_detection_fps)));
    out.insert(
        "cpu_usages".into(),
        json!({ pid.to_string(): {"cpu": format!("{cpu_percent:.1}"), "mem": "0.0"} }),
    );
    out.insert(
        "service".into(),
        json!({
            "uptime": ctx.state.uptime().as_secs(),
            "version": API_VERSION,
            "latest_version": "disabled",
            "storage": storage_map,
            "temperatures": temperatures(),
            "last_updated": ctx.state.now().as_secs(),
        }),
    );
    ok(&Value::Object(out))
}

/// CPU temperatures in °C where the host exposes them (`/sys/class/thermal`).
fn temperatures() -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/thermal") else {
        return out;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("thermal_zone") {
            continue;
        }
        let read = |f: &str| std::fs::read_to_string(e.path().join(f)).ok();
        if let Some(t) = read("temp").and_then(|t| t.trim().parse::<f64>().ok()) {
            let kind = read("type").map(|t| t.trim().to_owned()).unwrap_or(name);
            out.insert(kind, t / 1000.0);
        }
    }
    out
}

async fn newest_event_time(ctx: &Ctx, camera: &CameraId) -> Result<Option<String>, ApiError> {
    let mut q = Query::new(EventFilter {
        cameras: vec![camera.clone()],
        ..Default::default()
    });
    q.page.limit = 1;
    Ok(ctx
        .state
        .store()
        .events(&q)
        .await?
        .items
        .first()
        .map(|e| e.start_time.to_string()))
}

async fn spectrax_status(ctx: Ctx) -> Reply {
    let cams = cameras(&ctx).await?;
    let counts = ctx.state.store().event_counts().await?;
    let live = ctx.state.nvr().map(|n| n.live().clone());
    let mut out = serde_json::Map::new();
    for (c, s) in &cams {
        let mut objects = BTreeMap::<String, u64>::new();
        if let Some(frame) = live.as_ref().and_then(|l| l.latest(&c.id)) {
            for o in frame.objects.iter().filter(|o| o.true_positive) {
                *objects.entry(o.label.clone()).or_default() += 1;
            }
        }
        out.insert(
            c.id.to_string(),
            json!({
                "fps": round2(s.as_ref().and_then(|s| s.stream.as_ref()).map_or(0.0, |st| st.fps)),
                "detections": counts.by_camera.get(&c.id).copied().unwrap_or(0),
                "last_detection": newest_event_time(&ctx, &c.id).await?,
                "objects": objects,
            }),
        );
    }
    let model = ctx
        .state
        .detectors()
        .and_then(|r| r.figures().into_values().next())
        .map(|(info, _)| info.name)
        .unwrap_or_else(|| "motion".to_owned());
    ok(&json!({
        "status": "running",
        "cameras": out,
        "uptime_seconds": ctx.state.uptime().as_secs(),
        "model": model,
        "tracking_enabled": true,
    }))
}

async fn system_stats(ctx: Ctx) -> Reply {
    let store = ctx.state.store();
    let cams = store.cameras().await?;
    let events = store.event_counts().await?;
    let mut q = Query::new(DetectionFilter::default());
    q.page.limit = 1;
    q.page.with_total = true;
    let detections = store.detections(&q).await?.total.unwrap_or(0);
    let recs = store.recording_stats(0).await?;
    ok(&json!({
        "total_cameras": cams.len(),
        "active_cameras": cams.iter().filter(|c| c.enabled).count(),
        "total_events": events.total,
        "total_detections": detections,
        "total_recordings": recs.total.count,
        "recordings_bytes": recs.total.size_bytes,
        "uptime_seconds": ctx.state.uptime().as_secs(),
        "version": API_VERSION,
    }))
}

async fn health_detail(ctx: Ctx) -> Reply {
    let db = match ctx.state.store().max_id().await {
        Ok(_) => json!({"status": "healthy", "message": "the store answers"}),
        Err(e) => json!({"status": "unhealthy", "message": e.to_string()}),
    };
    let mut cams = serde_json::Map::new();
    let mut degraded = false;
    for (c, s) in cameras(&ctx).await? {
        let (status, msg) = match (&s, c.enabled) {
            (_, false) => ("disabled", None),
            (Some(s), true) if s.error.is_some() => ("unhealthy", s.error.clone()),
            (Some(s), true) if s.stream.as_ref().is_some_and(|st| st.connected) => {
                ("healthy", None)
            }
            (Some(s), true) => (
                "unhealthy",
                s.stream.as_ref().and_then(|st| st.last_error.clone()),
            ),
            (None, true) => ("unknown", None),
        };
        degraded |= status == "unhealthy";
        cams.insert(c.id.to_string(), json!({"status": status, "message": msg}));
    }
    let unhealthy = db["status"] == "unhealthy";
    let overall = if unhealthy {
        "unhealthy"
    } else if degraded {
        "degraded"
    } else {
        "healthy"
    };
    let detectors: serde_json::Map<String, Value> = ctx
        .state
        .detectors()
        .map(|r| r.figures())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, (info, f))| (n, json!({"status": "healthy", "model": info.name, "inference_ms": round2(f.inference_ms)})))
        .collect();
    let status = if unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok(crate::reply::json(
        status,
        &json!({
            "status": overall,
            "services": {"database": db, "cameras": cams, "detectors": detectors},
            "timestamp": ctx.state.now().to_string(),
        }),
    ))
}

fn storage_json(s: &vigil_core::pipeline::StorageStats) -> Value {
    let mut v = value_of(s);
    if let Value::Object(m) = &mut v {
        m.insert("total_bytes".into(), json!(s.filesystem_bytes));
        m.insert("free_bytes".into(), json!(s.available_bytes));
        m.insert(
            "used_bytes".into(),
            json!(s.filesystem_bytes.saturating_sub(s.available_bytes)),
        );
        m.insert("percent".into(), json!(round2(s.used_percent)));
        // picam's names: the threshold and whether auto-delete is on.
        m.insert("threshold".into(), json!(s.budget.max_percent));
        m.insert("max_percent".into(), json!(s.budget.max_percent));
        m.insert(
            "enabled".into(),
            json!(s.budget.max_percent.is_some() || s.budget.max_bytes.is_some()),
        );
        m.insert("auto_delete".into(), m["enabled"].clone());
        // Kept free whatever the budget, when it sets no percentage.
        m.insert(
            "reserve_bytes".into(),
            json!(s
                .budget
                .max_percent
                .is_none()
                .then(|| vigil_core::pipeline::default_reserve(s.filesystem_bytes))),
        );
    }
    v
}

async fn storage(ctx: Ctx) -> Reply {
    let nvr = ctx.state.need_nvr("storage statistics")?;
    let s = nvr.retention().storage().await?;
    ok(&storage_json(&s))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    /// Delete unretained recordings older than this many days.
    older_than_days: Option<u32>,
    /// Delete unretained recordings that start before this time.
    before: Option<String>,
    /// Of this camera only.
    camera: Option<String>,
}

async fn cleanup(ctx: Ctx) -> Reply {
    let nvr = ctx.state.need_nvr("cleanup")?;
    let body: CleanupBody = ctx.json_or_default()?;
    let now = nvr.clocks().realtime();
    let before = match (&body.before, body.older_than_days) {
        (Some(b), _) => Some(
            vigil_core::Timestamp::parse(b)
                .map_err(|e| ApiError::body(&["before"], e.message()))?,
        ),
        (None, Some(d)) => {
            Some(now.saturating_sub(std::time::Duration::from_secs(u64::from(d) * 86_400)))
        }
        (None, None) => None,
    };
    let camera = match &body.camera {
        Some(c) => {
            Some(CameraId::new(c.clone()).map_err(|e| ApiError::body(&["camera"], e.message()))?)
        }
        None => None,
    };
    let report = match before {
        Some(b) => nvr.retention().cleanup(camera.as_ref(), b).await?,
        // No cut-off: run retention now, whatever its schedule (picam's cleanup).
        None => nvr.retention().run().await?,
    };
    let deleted = report.expired + report.over_budget + report.cleaned;
    ok(&json!({
        "recordings_deleted": deleted,
        "snapshots_deleted": report.snapshots,
        "freed_bytes": report.freed_bytes,
        "space_reclaimed": report.freed_bytes,
        "report": report,
        "message": format!("deleted {deleted} recordings, freed {} bytes", report.freed_bytes),
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StorageConfig {
    enabled: Option<bool>,
    max_percent: Option<f64>,
    max_bytes: Option<u64>,
}

/// Applies a storage change to the running budget and saves it (it outlives a restart).
async fn apply_budget(
    nvr: &vigil_core::pipeline::Nvr,
    c: &StorageConfig,
    loc: &[&str],
) -> Result<DiskBudget, ApiError> {
    let mut b = nvr.retention().budget();
    if let Some(p) = c.max_percent {
        if !(1.0..=100.0).contains(&p) {
            let mut l = loc.to_vec();
            l.push("max_percent");
            return Err(ApiError::body(
                &l,
                format!("{p} is not a percentage between 1 and 100"),
            ));
        }
        b.max_percent = Some(p);
    }
    if let Some(m) = c.max_bytes {
        b.max_bytes = Some(m);
    }
    if c.enabled == Some(false) {
        b = DiskBudget::default();
    } else if c.enabled == Some(true) && b.max_percent.is_none() && b.max_bytes.is_none() {
        // picam's default threshold.
        b.max_percent = Some(85.0);
    }
    nvr.set_budget(b.clone()).await?;
    Ok(b)
}

async fn configure_storage(ctx: Ctx) -> Reply {
    let nvr = ctx.state.need_nvr("storage settings")?;
    let c: StorageConfig = ctx.json()?;
    apply_budget(nvr, &c, &[]).await?;
    let s = nvr.retention().storage().await?;
    ok(&storage_json(&s))
}

async fn severity(_: Ctx) -> Reply {
    ok(&json!({
        "definitions": [
            {"severity": "low", "label": "Low", "min_score": 0, "max_score": 29, "color": "#22c55e"},
            {"severity": "medium", "label": "Medium", "min_score": 30, "max_score": 59, "color": "#eab308"},
            {"severity": "high", "label": "High", "min_score": 60, "max_score": 84, "color": "#f97316"},
            {"severity": "critical", "label": "Critical", "min_score": 85, "max_score": 100, "color": "#ef4444"},
        ],
        "thresholds": {"low_max": 29, "medium_max": 59, "high_max": 84},
    }))
}

/// picam's levels: ok, warn, critical.
fn level(v: f64, warn: f64, critical: f64) -> &'static str {
    if v >= critical {
        "critical"
    } else if v >= warn {
        "warn"
    } else {
        "ok"
    }
}

async fn alert_state(ctx: Ctx) -> Reply {
    let mut alerts = serde_json::Map::new();
    let mut values = serde_json::Map::new();
    if let Some(t) = temperatures().values().copied().reduce(f64::max) {
        alerts.insert("cpu_temp".into(), level(t, 65.0, 80.0).into());
        values.insert("cpu_temp".into(), json!(t));
    }
    if let Some(n) = ctx.state.nvr() {
        if let Ok(s) = n.retention().storage().await {
            alerts.insert("storage".into(), level(s.used_percent, 85.0, 95.0).into());
            values.insert("storage_percent".into(), json!(round2(s.used_percent)));
        }
    }
    let overall = if alerts.values().any(|v| v == "critical") {
        "critical"
    } else if alerts.values().any(|v| v == "warn") {
        "warn"
    } else {
        "ok"
    };
    ok(&json!({"overall": overall, "alerts": alerts, "values": values}))
}

async fn deploy_info(_: Ctx) -> Reply {
    ok(&json!({
        "version": API_VERSION,
        "git_branch": option_env!("VIGIL_GIT_BRANCH"),
        "git_commit": option_env!("VIGIL_GIT_COMMIT"),
    }))
}

async fn system_info(ctx: Ctx) -> Reply {
    ok(&json!({
        "version": API_VERSION,
        "platform": {
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "git_branch": option_env!("VIGIL_GIT_BRANCH"),
            "git_commit": option_env!("VIGIL_GIT_COMMIT"),
        },
        "uptime_seconds": ctx.state.uptime().as_secs(),
        "pid": std::process::id(),
        "temperatures": temperatures(),
    }))
}

fn model_json(
    name: &str,
    info: &vigil_core::DetectorInfo,
    f: &vigil_detect::DetectorFigures,
) -> Value {
    json!({
        "name": name,
        "display_name": info.name,
        "status": "loaded",
        "enabled": true,
        "available": true,
        "category": "detection",
        "input_size": info.input_size,
        "labels": info.labels,
        "inference_ms": round2(f.inference_ms),
        "runs": f.runs,
        "images": f.images,
        "detections": f.detections,
        "runs_per_second": round2(f.runs_per_second),
        "detections_per_second": round2(f.detections_per_second),
    })
}

fn all_models(ctx: &Ctx) -> Vec<Value> {
    let mut out: Vec<Value> = ctx
        .state
        .detectors()
        .map(|r| r.figures())
        .unwrap_or_default()
        .iter()
        .map(|(n, (i, f))| model_json(n, i, f))
        .collect();
    // Motion needs no model and is always there.
    out.push(json!({
        "name": "motion",
        "display_name": "motion (frame differencing)",
        "status": "loaded",
        "enabled": true,
        "available": true,
        "category": "motion",
    }));
    out
}

async fn models(ctx: Ctx) -> Reply {
    let m = all_models(&ctx);
    ok(&json!({"models": m, "total_models": m.len(), "loaded_count": m.len()}))
}

async fn model(ctx: Ctx) -> Reply {
    let name = ctx.param("name");
    all_models(&ctx)
        .into_iter()
        .find(|m| m["name"] == name)
        .map_or_else(
            || Err(ApiError::not_found(format!("no detector {name:?}"))),
            |m| ok(&m),
        )
}

async fn model_zoo_status(ctx: Ctx) -> Reply {
    let m = all_models(&ctx);
    let compact: Vec<Value> = m
        .iter()
        .map(|m| json!({"name": m["name"], "status": m["status"], "inference_ms": m.get("inference_ms")}))
        .collect();
    ok(&json!({"models": compact, "total": compact.len(), "loaded": compact.len()}))
}

/// The configuration as Frigate serves it: what Home Assistant's integration reads.
async fn frigate_config(ctx: Ctx) -> Reply {
    let cams = ctx.state.store().cameras().await?;
    let mut cameras = serde_json::Map::new();
    for c in &cams {
        let poly = |p: &vigil_core::Polygon| {
            p.points
                .iter()
                .flat_map(|q| [q.x, q.y])
                .map(|v| format!("{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let zones: serde_json::Map<String, Value> = c
            .zones
            .iter()
            .map(|z| {
                (
                    z.name.clone(),
                    json!({"coordinates": poly(&z.polygon), "objects": z.labels, "inertia": z.inertia, "loitering_time": z.loitering_time_s}),
                )
            })
            .collect();
        let filters: serde_json::Map<String, Value> = c
            .detect
            .filters
            .iter()
            .map(|f| (f.label.clone(), json!({"min_score": f.min_score, "threshold": f.threshold, "min_area": f.min_area, "max_area": f.max_area, "min_ratio": f.min_ratio, "max_ratio": f.max_ratio})))
            .collect();
        let track = if c.detect.labels.is_empty() {
            vec!["person".to_owned()]
        } else {
            c.detect.labels.clone()
        };
        cameras.insert(
            c.id.to_string(),
            json!({
                "name": c.id,
                "enabled": c.enabled,
                "enabled_in_config": c.enabled,
                "detect": {"enabled": c.detect.enabled, "width": c.detect.width, "height": c.detect.height, "fps": c.detect.fps},
                "objects": {"track": track, "filters": filters},
                "zones": zones,
                "motion": {"enabled": c.motion.enabled, "threshold": c.motion.threshold, "contour_area": c.motion.contour_area, "mask": c.motion.masks.iter().map(poly).collect::<Vec<_>>()},
                "record": {"enabled": c.record.enabled && c.record.mode != vigil_core::RecordMode::Off, "events": {"pre_capture": c.record.pre_capture_s, "post_capture": c.record.post_capture_s}},
                "snapshots": {"enabled": c.snapshots.enabled, "bounding_box": c.snapshots.bounding_box, "crop": c.snapshots.crop},
                "audio": {"enabled": false, "enabled_in_config": false},
                "live": {"streams": if ctx.state.rtsp_port().is_some() { json!({c.id.as_str(): c.id}) } else { json!({}) }},
                "onvif": {"autotracking": {"enabled_in_config": false}},
            }),
        );
    }
    let detectors: serde_json::Map<String, Value> = ctx
        .state
        .detectors()
        .map(|r| r.figures())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, (info, _))| (n, json!({"type": "cpu", "model": info.name})))
        .collect();
    ok(&json!({
        "version": "0.16-0",
        "mqtt": match ctx.state.mqtt() {
            Some(m) => json!({"enabled": true, "host": m.host, "port": m.port,
                "topic_prefix": m.topic_prefix, "client_id": m.client_id,
                "stats_interval": m.stats_interval_s}),
            None => json!({"enabled": false, "topic_prefix": "vigil", "client_id": "vigil"}),
        },
        "model": {},
        "detectors": detectors,
        "cameras": cameras,
        // Home Assistant plays a camera at rtsp://<host>:8554/<stream> when its stream is here.
        "go2rtc": {"streams": match ctx.state.rtsp_port() {
            Some(port) => cams
                .iter()
                .filter(|c| c.enabled)
                .map(|c| (c.id.to_string(), json!([format!("rtsp://127.0.0.1:{port}/{}", c.id)])))
                .collect::<serde_json::Map<String, Value>>(),
            None => serde_json::Map::new(),
        }},
    }))
}

async fn system_config(ctx: Ctx) -> Reply {
    let cams = ctx.state.store().cameras().await?;
    let specs: serde_json::Map<String, Value> = cams
        .iter()
        .map(|c| (c.id.to_string(), super::cameras::wire_camera(c, None)))
        .collect();
    let budget = ctx.state.nvr().map(|n| n.retention().budget());
    let detectors: Vec<String> = ctx.state.detectors().map(|r| r.names()).unwrap_or_default();
    ok(&json!({
        "version": API_VERSION,
        "storage": budget,
        "detectors": detectors,
        "cameras": specs,
        "media_dir": ctx.state.data_dir().map(|d| d.display().to_string()),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigPatch {
    storage: Option<StorageConfig>,
}

async fn patch_system_config(ctx: Ctx) -> Reply {
    let p: ConfigPatch = ctx.json()?;
    if let Some(s) = &p.storage {
        let nvr = ctx.state.need_nvr("storage settings")?;
        apply_budget(nvr, s, &["storage"]).await?;
    }
    system_config(ctx).await
}

/// Prometheus' text format.
async fn metrics(ctx: Ctx) -> Reply {
    use std::fmt::Write;
    let mut m = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(m, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, v) in samples {
            let _ = writeln!(m, "{name}{labels} {v}");
        }
    };
    gauge(
        "vigil_up",
        "1 while the server runs.",
        &[(String::new(), 1.0)],
    );
    gauge(
        "vigil_uptime_seconds",
        "Seconds since the server started.",
        &[(String::new(), ctx.state.uptime().as_secs_f64())],
    );
    // Each camera's counters, read once; then one gauge per figure.
    struct Cam {
        labels: String,
        stream: vigil_core::pipeline::StreamStats,
        recorder: vigil_core::pipeline::RecorderStats,
        analysis: vigil_core::pipeline::AnalysisStats,
    }
    let cams: Vec<Cam> = cameras(&ctx)
        .await?
        .into_iter()
        .map(|(c, s)| {
            let s = s.unwrap_or_else(|| CameraStatus {
                id: c.id.clone(),
                enabled: c.enabled,
                stream: None,
                recorder: None,
                analysis: None,
                error: None,
            });
            Cam {
                labels: format!("{{camera=\"{}\"}}", c.id),
                stream: s.stream.unwrap_or_default(),
                recorder: s.recorder.unwrap_or_default(),
                analysis: s.analysis.map(|a| a.1).unwrap_or_default(),
            }
        })
        .collect();
    type Pick = fn(&Cam) -> f64;
    let per_camera: [(&str, &str, Pick); 9] = [
        (
            "vigil_camera_connected",
            "1 when frames arrive from the camera.",
            |c| f64::from(u8::from(c.stream.connected)),
        ),
        (
            "vigil_camera_fps",
            "Frames per second received (5 s window).",
            |c| c.stream.fps,
        ),
        (
            "vigil_camera_bitrate_bps",
            "Bits per second received (5 s window).",
            |c| c.stream.bitrate_bps,
        ),
        (
            "vigil_camera_frames_total",
            "Frames received since start.",
            |c| c.stream.frames as f64,
        ),
        (
            "vigil_camera_reconnects_last_hour",
            "Reconnections in the last hour.",
            |c| f64::from(c.stream.reconnects_last_hour),
        ),
        (
            "vigil_recorder_segments_total",
            "Segments committed since start.",
            |c| c.recorder.segments as f64,
        ),
        (
            "vigil_recorder_errors_total",
            "Segment write or commit failures since start.",
            |c| c.recorder.errors as f64,
        ),
        (
            "vigil_analysis_frames_total",
            "Frames handed to the analysis since start.",
            |c| c.analysis.frames as f64,
        ),
        (
            "vigil_analysis_skipped_total",
            "Frames only decoded because the analysis was behind.",
            |c| c.analysis.skipped as f64,
        ),
    ];
    for (name, help, pick) in per_camera {
        let samples: Vec<(String, f64)> =
            cams.iter().map(|c| (c.labels.clone(), pick(c))).collect();
        gauge(name, help, &samples);
    }
    let dets = ctx
        .state
        .detectors()
        .map(|r| r.figures())
        .unwrap_or_default();
    type PickDetector = fn(&vigil_detect::DetectorFigures) -> f64;
    let per_detector: [(&str, &str, PickDetector); 2] = [
        (
            "vigil_detector_inference_ms",
            "Time of one detector run, smoothed.",
            |f| f.inference_ms,
        ),
        (
            "vigil_detector_runs_total",
            "Detector runs since start.",
            |f| f.runs as f64,
        ),
    ];
    for (name, help, pick) in per_detector {
        let samples: Vec<(String, f64)> = dets
            .iter()
            .map(|(n, (_, f))| (format!("{{detector=\"{n}\"}}"), pick(f)))
            .collect();
        gauge(name, help, &samples);
    }
    let counts = ctx.state.store().event_counts().await?;
    gauge(
        "vigil_events_total",
        "Events in the store, per camera.",
        &counts
            .by_camera
            .iter()
            .map(|(c, n)| (format!("{{camera=\"{c}\"}}"), *n as f64))
            .collect::<Vec<_>>(),
    );
    if let Some(n) = ctx.state.nvr() {
        if let Ok(s) = n.retention().storage().await {
            gauge(
                "vigil_storage_used_percent",
                "How full the data directory's filesystem is.",
                &[(String::new(), s.used_percent)],
            );
            gauge(
                "vigil_recordings_bytes",
                "Bytes of recordings, per camera.",
                &s.by_camera
                    .iter()
                    .map(|(c, st)| (format!("{{camera=\"{c}\"}}"), st.size_bytes as f64))
                    .collect::<Vec<_>>(),
            );
        }
    }
    Ok(bytes(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        m,
    ))
}

async fn services(ctx: Ctx) -> Reply {
    let mut out = Vec::new();
    for (c, s) in cameras(&ctx).await? {
        let status = match (&s, c.enabled) {
            (_, false) => "disabled",
            (Some(s), _) if s.error.is_some() => "error",
            (Some(s), _) if s.stream.is_some() => "running",
            _ => "stopped",
        };
        out.push(json!({
            "name": format!("camera:{}", c.id),
            "kind": "camera",
            "status": status,
            "enabled": c.enabled,
            "error": s.as_ref().and_then(|s| s.error.clone()),
            "reconnects_last_hour": s.as_ref().and_then(|s| s.stream.as_ref()).map(|st| st.reconnects_last_hour),
        }));
    }
    let running = if ctx.state.nvr().is_some() {
        "running"
    } else {
        "stopped"
    };
    out.push(json!({"name": "retention", "kind": "subsystem", "status": running, "enabled": true}));
    out.push(json!({"name": "http", "kind": "subsystem", "status": "running", "enabled": true}));
    for n in ctx.state.detectors().map(|r| r.names()).unwrap_or_default() {
        out.push(json!({"name": format!("detector:{n}"), "kind": "detector", "status": "running", "enabled": true}));
    }
    ok(&json!({"services": out, "count": out.len()}))
}

async fn service_action(ctx: Ctx) -> Reply {
    let name = ctx.param("name").to_owned();
    let action = ctx.param("action").to_owned();
    if !matches!(action.as_str(), "restart" | "start" | "enable" | "disable") {
        return Err(ApiError::path(
            "action",
            format!("must be restart, start, enable or disable, got {action:?}"),
        ));
    }
    let Some(id) = name.strip_prefix("camera:") else {
        let known = name == "retention" || name == "http" || name.starts_with("detector:");
        return Err(if known {
            ApiError::Status(
                StatusCode::CONFLICT,
                format!("{name} runs for as long as vigild does; it cannot be {action}ed alone"),
            )
        } else {
            ApiError::not_found(format!("no service {name:?}"))
        });
    };
    let mut cfg = super::cameras::camera_by_name(&ctx, id).await?;
    let nvr = ctx.state.need_nvr("services")?;
    match action.as_str() {
        "enable" | "disable" => {
            cfg.enabled = action == "enable";
            cfg.updated_at = nvr.clocks().realtime();
            ctx.state
                .store()
                .apply(vigil_core::Mutation::PutCamera(Box::new(cfg.clone())).into())
                .await?;
        }
        _ if !cfg.enabled => {
            return Err(ApiError::Status(
                StatusCode::CONFLICT,
                format!("{name} is disabled: enable it first"),
            ));
        }
        _ => {}
    }
    nvr.put_camera(&cfg).await;
    ok(
        &json!({"name": name, "action": action, "status": if cfg.enabled { "running" } else { "disabled" }}),
    )
}

async fn restart_all(ctx: Ctx) -> Reply {
    let nvr = ctx.state.need_nvr("restarting the cameras")?;
    let cams = ctx.state.store().cameras().await?;
    for c in &cams {
        nvr.put_camera(c).await;
    }
    ok(&json!({"message": format!("Restarted {} camera pipelines", cams.len())}))
}

async fn pipeline_latency(ctx: Ctx) -> Reply {
    let mut per = serde_json::Map::new();
    for (c, s) in cameras(&ctx).await? {
        let latency = s
            .as_ref()
            .and_then(|s| s.analysis.as_ref())
            .map(|a| a.1.latency.clone());
        per.insert(c.id.to_string(), value_of(&latency));
    }
    ok(&json!({
        "window_seconds": vigil_core::pipeline::LATENCY_WINDOW.as_secs(),
        "cameras": per,
        "timestamp": ctx.state.now().to_string(),
    }))
}

async fn latency_history(ctx: Ctx) -> Reply {
    let models: serde_json::Map<String, Value> = ctx
        .state
        .detectors()
        .map(|r| r.history())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, h)| (n, value_of(&h)))
        .collect();
    ok(&json!({
        "interval_seconds": 60,
        "window_minutes": vigil_detect::registry::HISTORY_MINUTES,
        "models": models,
    }))
}

async fn telemetry(ctx: Ctx) -> Reply {
    let mut per = serde_json::Map::new();
    for (c, s) in cameras(&ctx).await? {
        per.insert(
            c.id.to_string(),
            json!({
                "stream": s.as_ref().and_then(|s| s.stream.clone()),
                "recorder": s.as_ref().and_then(|s| s.recorder.clone()),
                "detect_stream": s.as_ref().and_then(|s| s.analysis.as_ref()).map(|a| a.0.clone()),
                "analysis": s.as_ref().and_then(|s| s.analysis.as_ref()).map(|a| a.1.clone()),
            }),
        );
    }
    let detectors: serde_json::Map<String, Value> = ctx
        .state
        .detectors()
        .map(|r| r.figures())
        .unwrap_or_default()
        .into_iter()
        .map(|(n, (_, f))| (n, value_of(&f)))
        .collect();
    ok(&json!({"cameras": per, "detectors": detectors, "timestamp": ctx.state.now().to_string()}))
}
