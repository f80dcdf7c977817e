//! picam's snapshots: capture a still from a camera's live picture, list them, serve one by
//! path, delete one. Paths are checked so that nothing outside the media directory's
//! `snapshots/` can be read or deleted through them.

use std::path::{Component, Path, PathBuf};

use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use vigil_core::pipeline::recorder::sync_dir;
use vigil_core::{
    CameraConfig, Mutation, Query, Snapshot, SnapshotFilter, SnapshotId, SnapshotSource,
};
use vigil_detect::{render_live, Overlays};

use super::cameras::{camera_by_name, camera_or_first, CameraBody};
use super::{GET, POST};
use crate::error::ApiError;
use crate::reply::{file, json as json_reply, ok, Reply};
use crate::router::{Ctx, Router};

pub(super) fn routes(r: &mut Router) {
    r.add(
        POST,
        "/snapshot",
        "snapshots",
        "Capture a still of a camera ({\"camera\"}; the first by default)",
        capture,
    );
    r.add(
        POST,
        "/api/cameras/{camera}/snapshots",
        "snapshots",
        "Capture a still of a camera",
        capture_of_camera,
    );
    r.add(
        GET,
        "/snapshots",
        "snapshots",
        "Captured stills, newest first",
        list,
    );
    r.add(
        GET,
        "/snapshot_image",
        "snapshots",
        "One still, by ?path=",
        image,
    );
    r.add(
        POST,
        "/delete_snapshot",
        "snapshots",
        "Delete a still: {\"snapshot_path\"}",
        delete,
    );
}

async fn capture(ctx: Ctx) -> Reply {
    let body: CameraBody = ctx.json_or_default()?;
    let cfg = camera_or_first(&ctx, body.camera.as_deref()).await?;
    capture_from(&ctx, cfg).await
}

async fn capture_of_camera(ctx: Ctx) -> Reply {
    let cfg = camera_by_name(&ctx, ctx.param("camera")).await?;
    capture_from(&ctx, cfg).await
}

fn wire(dir: &Path, s: &Snapshot) -> Value {
    json!({
        "id": s.id.to_string(),
        "camera": s.camera,
        "time": s.time.to_string(),
        "path": dir.join(&s.path).display().to_string(),
        "size": s.size_bytes,
        "source": match s.source {
            SnapshotSource::Manual => "manual",
            SnapshotSource::Event => "event",
            SnapshotSource::Trigger => "trigger",
        },
        "url": format!("/snapshot_image?path={}", s.path),
    })
}

async fn capture_from(ctx: &Ctx, cfg: CameraConfig) -> Reply {
    let nvr = ctx.state.need_nvr("capturing a snapshot")?;
    let dir = ctx.state.need_data_dir()?.to_owned();
    let frame = nvr.live().latest(&cfg.id).ok_or_else(|| {
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no picture from camera {} yet", cfg.id),
        )
    })?;
    let id = SnapshotId(nvr.ids().next(frame.time));
    let day = frame
        .time
        .to_jiff()
        .map(|t| t.strftime("%Y%m%d_%H%M%S").to_string())
        .unwrap_or_default();
    let rel = format!("snapshots/{}/snapshot_{day}_{}.jpg", cfg.id, id.0);
    let path = dir.join(&rel);
    let time = frame.time;
    let size = tokio::task::spawn_blocking(move || -> vigil_core::Result<u64> {
        let jpeg = render_live(&frame, &[], &[], &Overlays::default(), None, 90)?;
        let io =
            |e: std::io::Error| vigil_core::Error::internal(format!("writing a snapshot: {e}"));
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(io)?;
        let tmp = path.with_extension("jpg.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&jpeg).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &path).map_err(io)?;
        sync_dir(parent)?;
        Ok(jpeg.len() as u64)
    })
    .await
    .map_err(|e| ApiError::Core(vigil_core::Error::internal(e.to_string())))??;
    let s = Snapshot {
        id,
        camera: cfg.id.clone(),
        time,
        path: rel,
        size_bytes: size,
        source: SnapshotSource::Manual,
        event_id: None,
    };
    ctx.state
        .store()
        .apply(Mutation::PutSnapshot(Box::new(s.clone())).into())
        .await?;
    Ok(json_reply(StatusCode::OK, &wire(&dir, &s)))
}

async fn list(ctx: Ctx) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let mut q = Query::new(SnapshotFilter::default());
    q.page.limit = vigil_core::query::MAX_PAGE_LIMIT;
    let mut out = Vec::new();
    loop {
        let page = ctx.state.store().snapshots(&q).await?;
        out.extend(
            page.items
                .iter()
                .filter(|s| s.source != SnapshotSource::Event)
                .map(|s| wire(&dir, s)),
        );
        match page.next_cursor {
            Some(c) if page.has_more && out.len() < 100_000 => q.page.cursor = Some(c),
            _ => break,
        }
    }
    ok(&out)
}

/// The file a client names, absolute or relative to the media directory, when it is a
/// `snapshot_*.jpg` under `snapshots/`, with no `..`, and still there after symlinks are
/// followed; `None` otherwise.
fn checked(dir: &Path, given: &str) -> Option<PathBuf> {
    let p = Path::new(given);
    let rel = if p.is_absolute() {
        p.strip_prefix(dir).ok()?.to_owned()
    } else {
        p.to_owned()
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let mut comps = rel.components();
    if comps.next()?.as_os_str() != "snapshots" {
        return None;
    }
    let name = rel.file_name()?.to_str()?;
    if !(name.starts_with("snapshot_") && name.ends_with(".jpg")) {
        return None;
    }
    let real = dir.join(&rel).canonicalize().ok()?;
    let root = dir.join("snapshots").canonicalize().ok()?;
    real.starts_with(&root).then_some(real)
}

async fn image(ctx: Ctx) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let given = ctx.required_query("path")?;
    let Some(path) = checked(&dir, &given) else {
        return Err(ApiError::not_found(format!("no snapshot {given:?}")));
    };
    let mut r = file(&path, "image/jpeg", &ctx.headers).await?;
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400"),
    );
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    snapshot_path: String,
}

async fn delete(ctx: Ctx) -> Reply {
    let dir = ctx.state.need_data_dir()?.to_owned();
    let body: DeleteBody = ctx.json()?;
    let given = body.snapshot_path;
    // picam: 400 for a path that is not a snapshot's, 404 for one that is not there.
    let rel_ok = {
        let p = Path::new(&given);
        let rel = if p.is_absolute() {
            p.strip_prefix(&dir).ok()
        } else {
            Some(p)
        };
        rel.is_some_and(|r| {
            r.components().all(|c| matches!(c, Component::Normal(_)))
                && r.starts_with("snapshots")
                && r.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot_") && n.ends_with(".jpg"))
        })
    };
    if !rel_ok {
        return Err(ApiError::bad_request(format!(
            "{given:?} is not a snapshot under the media directory"
        )));
    }
    let Some(path) = checked(&dir, &given) else {
        return Err(ApiError::not_found(format!("no snapshot {given:?}")));
    };
    // The record's id is the file name's last part.
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit('_').next())
        .and_then(|s| s.parse::<u64>().ok())
        .map(SnapshotId);
    let mut batch = vigil_core::Batch::new();
    if let Some(id) = id {
        if let Some(snap) = ctx.state.store().snapshot(id).await? {
            batch.push(Mutation::DeleteSnapshot(id));
            // An event whose best snapshot it was no longer has one.
            if let Some(event) = snap.event_id {
                batch.push(Mutation::PatchEvent(Box::new(vigil_core::EventPatch {
                    forget_snapshot: Some(snap.path),
                    ..vigil_core::EventPatch::new(event)
                })));
            }
        }
    }
    // The record goes first: a crash between the two leaves a file nobody lists, never a
    // record without its file.
    if !batch.is_empty() {
        ctx.state.store().apply(batch).await?;
    }
    tokio::fs::remove_file(&path)
        .await
        .map_err(|e| ApiError::io("deleting a snapshot", e))?;
    ok(&json!({"message": "Snapshot deleted", "path": path.display().to_string()}))
}
