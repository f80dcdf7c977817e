//! `vigil`: the Vigil command-line tool.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vigil_core::Store;
use vigil_store::{LmdbStore, StoreOptions};

/// Script and inspect a Vigil installation.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Opens the store offline and reports what it holds (schema, counts, cameras).
    Check {
        /// Data directory of the vigild installation.
        #[arg(long, env = "VIGIL_DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
    },
    /// Works with detection models.
    Model {
        #[command(subcommand)]
        cmd: ModelCmd,
    },
}

#[derive(Subcommand, Debug)]
enum ModelCmd {
    /// Runs a YOLOv8 network raw: reads the tensor `input` ([1, 3, H, W], f32) from a
    /// safetensors file and writes the head output `output` ([1, 84, N], f32, before NMS), so
    /// the model can be compared with another implementation. The size (n to x) comes from
    /// the weights.
    Run {
        /// Weights (safetensors; ultralytics' or candle's names).
        #[arg(long)]
        model: PathBuf,
        /// Safetensors file with the tensor `input`.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the safetensors file with the tensor `output`.
        #[arg(long)]
        output: PathBuf,
    },
    /// Downloads YOLOv8 weights (candle's safetensors from Hugging Face), checks their
    /// SHA-256 and that they load, and prints the path to give `vigild --model`.
    Fetch {
        /// yolov8n, yolov8s, yolov8m, yolov8l or yolov8x.
        name: String,
        /// Directory to put the file in.
        #[arg(long, env = "VIGIL_MODEL_DIR", default_value = "models")]
        dir: PathBuf,
        /// Where the files are (the file name is appended).
        #[arg(long, env = "VIGIL_MODEL_BASE_URL", default_value = vigil_cli::fetch::DEFAULT_BASE_URL)]
        base_url: String,
        /// Expected SHA-256 in hex (by default the one the server states).
        #[arg(long)]
        sha256: Option<String>,
        /// Download again even when the file is there.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Check { data_dir } => check(data_dir),
        Cmd::Model {
            cmd:
                ModelCmd::Run {
                    model,
                    input,
                    output,
                },
        } => model_run(&model, &input, &output),
        Cmd::Model {
            cmd:
                ModelCmd::Fetch {
                    name,
                    dir,
                    base_url,
                    sha256,
                    force,
                },
        } => model_fetch(vigil_cli::fetch::FetchRequest {
            name,
            dir,
            base_url,
            sha256,
            force,
        }),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn model_run(
    model: &std::path::Path,
    input: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let m = vigil_detect::yolo::run_safetensors(model, input, output)?;
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

fn model_fetch(req: vigil_cli::fetch::FetchRequest) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut shown = u64::MAX;
    let mut progress = |n: u64, total: Option<u64>| {
        if !tty {
            return;
        }
        let mb = n >> 20;
        if mb == shown {
            return;
        }
        shown = mb;
        let mut err = std::io::stderr();
        let _ = match total {
            Some(t) if t > 0 => write!(err, "\r{:3}% {mb} MiB of {} MiB", n * 100 / t, t >> 20),
            _ => write!(err, "\r{mb} MiB"),
        };
        let _ = err.flush();
    };
    let got = vigil_cli::fetch::fetch(&req, &mut progress)?;
    if tty {
        eprintln!();
    }
    eprintln!(
        "{} {} ({} bytes, SHA-256 {})",
        if got.downloaded {
            "fetched"
        } else {
            "already there:"
        },
        got.path.display(),
        got.bytes,
        got.sha256
    );
    println!("{}", got.path.display());
    Ok(())
}

fn check(data_dir: PathBuf) -> anyhow::Result<()> {
    let dir = vigil_cli::store_dir(&data_dir);
    if !dir.join("data.mdb").exists() {
        anyhow::bail!(
            "no store in {} (expected {})",
            data_dir.display(),
            dir.join("data.mdb").display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread().build()?;
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(
            LmdbStore::open(&dir, StoreOptions::default())
                .with_context(|| format!("opening the store in {}", dir.display()))?,
        );
        let cams = store.cameras().await?;
        let ev = store.event_counts().await?;
        let rec = store.recording_stats(0).await?;
        println!(
            "store: {} (schema {})",
            dir.display(),
            vigil_store::SCHEMA_VERSION
        );
        println!(
            "cameras: {}",
            cams.iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("events: {}", ev.total);
        println!(
            "recordings: {} ({} bytes)",
            rec.total.count, rec.total.size_bytes
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
