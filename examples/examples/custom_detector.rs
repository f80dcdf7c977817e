//! A daemon of your own: everything `vigild` does, plus a detector kind written here. The kind
//! `red` finds strongly red things (a toy: the colour of the demo scene's crossing box) and
//! reports them as `red_thing`; the configuration file names it like any built-in kind:
//!
//! ```toml
//! [detectors.red]
//! kind = "red"
//! min_score = 0.5
//!
//! [cameras.yard]
//! url = "synthetic:640x360@10"
//! detect = { labels = ["red_thing"] }
//! ```
//!
//! `cargo run -p vigil-examples --example custom_detector -- --config red.toml --no-auth`
//! then takes every flag of `vigild` (`--help`), and `/api/stats` shows the detector's speed.

use std::sync::Arc;

use async_trait::async_trait;
use vigil_core::{BBox, Detector, DetectorInfo, Image, ObjectDetection, PixelFormat, Result};
use vigil_detect::{DetectorRegistry, DetectorSpec};

/// Finds the box around the pixels that are much redder than they are green or blue.
struct RedDetector {
    min_score: f32,
}

#[async_trait]
impl Detector for RedDetector {
    fn info(&self) -> DetectorInfo {
        DetectorInfo {
            name: "red things (example)".into(),
            labels: vec!["red_thing".into()],
            input_size: 0,
        }
    }

    async fn detect(&self, image: Arc<Image>) -> Result<Vec<ObjectDetection>> {
        let rgb = match image.format {
            PixelFormat::Rgb8 => image.data.to_vec(),
            _ => vigil_detect::image::to_rgb(&image)?,
        };
        let (w, h) = (image.width as usize, image.height as usize);
        let (mut x0, mut y0, mut x1, mut y1, mut n) = (w, h, 0, 0, 0usize);
        for (i, p) in rgb.chunks_exact(3).enumerate() {
            let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            if r > 150 && r - g > 80 && r - b > 80 {
                let (x, y) = (i % w, i / w);
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                n += 1;
            }
        }
        if n < 20 {
            return Ok(Vec::new());
        }
        // The score: how much of its box the red fills.
        let area = ((x1 - x0) * (y1 - y0)).max(1);
        let score = (n as f32 / area as f32).min(1.0);
        if score < self.min_score {
            return Ok(Vec::new());
        }
        Ok(vec![ObjectDetection {
            label: "red_thing".into(),
            score,
            bbox: BBox {
                x1: x0 as f32 / w as f32,
                y1: y0 as f32 / h as f32,
                x2: x1 as f32 / w as f32,
                y2: y1 as f32 / h as f32,
            },
        }])
    }
}

fn main() -> std::process::ExitCode {
    vigil_cli::daemon::main_with(|registry: &mut DetectorRegistry| {
        registry.register_kind(
            "red",
            Arc::new(|spec: &DetectorSpec| -> Result<Arc<dyn Detector>> {
                Ok(Arc::new(RedDetector {
                    min_score: spec.min_score.unwrap_or(0.5),
                }))
            }),
        );
    })
}
