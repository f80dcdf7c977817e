//! `vigil model fetch`: downloads YOLOv8 weights in safetensors form.
//!
//! The weights come from the Hugging Face repository that hosts candle's YOLOv8 safetensors
//! (`lmz/candle-yolo-v8`, files `yolov8{n,s,m,l,x}.safetensors`). Hugging Face answers a file
//! request with a redirect that carries the file's SHA-256 (`X-Linked-Etag`) and size
//! (`X-Linked-Size`); the download is checked against them, or against a checksum the user
//! gives, and must load as a YOLOv8 network of the size asked for before it takes its final
//! name. Nothing half-downloaded is ever left under that name.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// Where the weights are fetched from unless told otherwise.
pub const DEFAULT_BASE_URL: &str = "https://huggingface.co/lmz/candle-yolo-v8/resolve/main";

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// What to fetch and where to put it.
#[derive(Clone, Debug)]
pub struct FetchRequest {
    /// `yolov8n`, `yolov8s`, `yolov8m`, `yolov8l` or `yolov8x`.
    pub name: String,
    /// Directory the file goes into (created when missing).
    pub dir: PathBuf,
    /// Base URL; the file name is appended.
    pub base_url: String,
    /// Expected SHA-256 (hex); when `None`, the checksum the server states.
    pub sha256: Option<String>,
    /// Replace a file that is already there.
    pub force: bool,
}

/// What a fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The weights file.
    pub path: PathBuf,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// False when a verified file was already there and nothing was downloaded.
    pub downloaded: bool,
}

/// The model size letter of a name (`yolov8n` → `n`).
fn size_of(name: &str) -> anyhow::Result<char> {
    match name.strip_prefix("yolov8") {
        Some(s @ ("n" | "s" | "m" | "l" | "x")) => Ok(s.chars().next().unwrap_or('n')),
        _ => {
            bail!("unknown model {name:?}: expected yolov8n, yolov8s, yolov8m, yolov8l or yolov8x")
        }
    }
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Downloads the weights `req.name`, verifies them and moves them into place.
pub fn fetch(
    req: &FetchRequest,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> anyhow::Result<Fetched> {
    let size = size_of(&req.name)?;
    if let Some(s) = &req.sha256 {
        if !is_sha256(s) {
            bail!("--sha256 {s:?} is not 64 hexadecimal digits");
        }
    }
    let file_name = format!("{}.safetensors", req.name);
    let dest = req.dir.join(&file_name);
    if dest.exists() && !req.force {
        let (sha256, bytes) = hash_file(&dest)?;
        if req
            .sha256
            .as_ref()
            .is_some_and(|want| !want.eq_ignore_ascii_case(&sha256))
        {
            bail!(
                "{} exists with SHA-256 {sha256}, not the one asked for; pass --force to replace it",
                dest.display()
            );
        }
        check_model(&dest, size)?;
        return Ok(Fetched {
            path: dest,
            sha256,
            bytes,
            downloaded: false,
        });
    }
    std::fs::create_dir_all(&req.dir).with_context(|| format!("creating {}", req.dir.display()))?;
    let url = format!("{}/{file_name}", req.base_url.trim_end_matches('/'));
    let part = req.dir.join(format!(".{file_name}.part"));
    let result = download(&url, &part, progress).and_then(|got| {
        let want = req
            .sha256
            .clone()
            .or(got.stated_sha256.clone())
            .context("the server stated no checksum for the file; pass --sha256 to check it")?;
        if !want.eq_ignore_ascii_case(&got.sha256) {
            bail!(
                "checksum mismatch for {url}: got SHA-256 {}, expected {want}",
                got.sha256
            );
        }
        if let Some(n) = got.stated_size.filter(|n| *n != got.bytes) {
            bail!(
                "size mismatch for {url}: got {} bytes, expected {n}",
                got.bytes
            );
        }
        check_model(&part, size)?;
        Ok(got)
    });
    let got = match result {
        Ok(g) => g,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    std::fs::rename(&part, &dest)
        .with_context(|| format!("moving the download to {}", dest.display()))?;
    if let Ok(d) = File::open(&req.dir) {
        let _ = d.sync_all();
    }
    Ok(Fetched {
        path: dest,
        sha256: got.sha256,
        bytes: got.bytes,
        downloaded: true,
    })
}

/// The weights load and are the size their name says.
fn check_model(path: &Path, size: char) -> anyhow::Result<()> {
    let model = vigil_detect::YoloV8::load(path)
        .with_context(|| format!("{} is not a usable YOLOv8 model", path.display()))?;
    let got = model.size().name();
    if !got.starts_with(size) {
        bail!(
            "{} holds a yolov8{got} network, not yolov8{size}",
            path.display()
        );
    }
    Ok(())
}

fn hash_file(path: &Path) -> anyhow::Result<(String, u64)> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    hash_copy(&mut f, |_| Ok(())).with_context(|| format!("reading {}", path.display()))
}

/// Reads `from` to its end, handing each chunk to `sink`; returns its SHA-256 and length.
fn hash_copy(
    from: &mut dyn Read,
    mut sink: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = from.read(&mut buf)?;
        if k == 0 {
            return Ok((hex(&h.finalize()), n));
        }
        h.update(&buf[..k]);
        sink(&buf[..k])?;
        n += k as u64;
    }
}

struct Downloaded {
    sha256: String,
    bytes: u64,
    stated_sha256: Option<String>,
    stated_size: Option<u64>,
}

/// GETs `url` into `part` (fsynced), following redirects by hand so that the checksum and
/// size headers of each hop are seen.
fn download(
    url: &str,
    part: &Path,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> anyhow::Result<Downloaded> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
        // A stalled server is an error, not a hang; a slow link is fine.
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut url = url.to_owned();
    let mut stated_sha256 = None;
    let mut stated_size = None;
    for _ in 0..=MAX_REDIRECTS {
        let resp = agent
            .get(&url)
            .call()
            .with_context(|| format!("requesting {url}"))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.trim()
                        .trim_start_matches("W/")
                        .trim_matches('"')
                        .to_owned()
                })
        };
        if let Some(s) = header("x-linked-etag").filter(|s| is_sha256(s)) {
            stated_sha256 = Some(s.to_ascii_lowercase());
        }
        if let Some(n) = header("x-linked-size").and_then(|s| s.parse().ok()) {
            stated_size = Some(n);
        }
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let location = header("location")
                .with_context(|| format!("{url} redirected (HTTP {status}) without a Location"))?;
            url = resolve(&url, &location)?;
            continue;
        }
        if status != 200 {
            bail!("{url} answered HTTP {status}");
        }
        // A plain ETag that is a SHA-256 is one too (what Hugging Face's own file hosting says).
        if stated_sha256.is_none() {
            stated_sha256 = header("etag")
                .filter(|s| is_sha256(s))
                .map(|s| s.to_ascii_lowercase());
        }
        let total = header("content-length").and_then(|s| s.parse().ok());
        let mut body = resp.into_body();
        let mut reader = body.as_reader();
        let mut out = File::create(part).with_context(|| format!("creating {}", part.display()))?;
        let mut written = 0u64;
        let (sha256, n) = hash_copy(&mut reader, |chunk| {
            out.write_all(chunk)
                .with_context(|| format!("writing {}", part.display()))?;
            written += chunk.len() as u64;
            progress(written, total);
            Ok(())
        })
        .with_context(|| format!("downloading {url}"))?;
        if let Some(t) = total.filter(|t| *t != n) {
            bail!("{url} ended after {n} of {t} bytes");
        }
        out.sync_all()
            .with_context(|| format!("syncing {}", part.display()))?;
        return Ok(Downloaded {
            sha256,
            bytes: n,
            stated_sha256,
            stated_size,
        });
    }
    bail!("{url}: more than {MAX_REDIRECTS} redirects")
}

/// `location` relative to `base` (absolute URLs, absolute paths).
fn resolve(base: &str, location: &str) -> anyhow::Result<String> {
    if location.contains("://") {
        return Ok(location.to_owned());
    }
    let scheme_end = base
        .find("://")
        .map(|i| i + 3)
        .context("a URL without a scheme")?;
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if location.starts_with('/') {
        return Ok(format!("{}{location}", &base[..host_end]));
    }
    let dir_end = base
        .rfind('/')
        .filter(|i| *i >= host_end)
        .map_or(host_end, |i| i);
    Ok(format!("{}/{location}", &base[..dir_end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_redirects() {
        assert_eq!(size_of("yolov8s").unwrap(), 's');
        assert!(size_of("yolov9n").is_err());
        assert!(size_of("yolov8").is_err());
        let b = "http://h:1/a/b/c.safetensors";
        assert_eq!(resolve(b, "https://cdn/x").unwrap(), "https://cdn/x");
        assert_eq!(resolve(b, "/x/y").unwrap(), "http://h:1/x/y");
        assert_eq!(resolve(b, "d").unwrap(), "http://h:1/a/b/d");
    }
}
