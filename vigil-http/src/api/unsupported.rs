//! Endpoints of the documents that need what a server has no meaning for (GPIO pins,
//! Bluetooth, a captive portal, rebooting the host, a GPU) or a language model (AI audit,
//! prompt management): each answers 501 with the reason, so a client learns why.

use hyper::StatusCode;

use super::{DELETE, GET, POST, PUT};
use crate::error::ApiError;
use crate::reply::Reply;
use crate::router::{Ctx, Router};

const LLM: &str = "needs a language model, which Vigil does not run";

/// (method, path, document, reason): every endpoint answered with 501.
pub(crate) const UNSUPPORTED: &[(&str, &str, &str, &str)] = &[
    (
        "POST",
        "/sensor/test",
        "picam",
        "reads a GPIO pin; Vigil's sensors are triggers (HTTP, MQTT, mock), see /api/triggers",
    ),
    (
        "POST",
        "/bt/scan",
        "picam",
        "scans for Bluetooth devices; presence is arming, see /api/arming",
    ),
    (
        "POST",
        "/bt/discoverable",
        "picam",
        "pairs a Bluetooth device; presence is arming, see /api/arming",
    ),
    (
        "POST",
        "/bluetooth/scan",
        "picam",
        "scans for Bluetooth devices; presence is arming, see /api/arming",
    ),
    (
        "POST",
        "/bluetooth/pair",
        "picam",
        "pairs a Bluetooth device; presence is arming, see /api/arming",
    ),
    (
        "POST",
        "/bluetooth/discoverable",
        "picam",
        "pairs a Bluetooth device; presence is arming, see /api/arming",
    ),
    (
        "POST",
        "/devices/bt/add",
        "picam",
        "registers a Bluetooth device; presence is arming, see /api/arming",
    ),
    (
        "POST",
        "/devices/bt/remove",
        "picam",
        "unregisters a Bluetooth device; presence is arming, see /api/arming",
    ),
    (
        "GET",
        "/captive-portal",
        "picam",
        "a captive portal rewrites the host's firewall; a server does not own it",
    ),
    (
        "POST",
        "/captive-portal",
        "picam",
        "a captive portal rewrites the host's firewall; a server does not own it",
    ),
    (
        "POST",
        "/system/reboot",
        "picam",
        "rebooting the host is the host's business (systemctl), not the NVR's",
    ),
    (
        "GET",
        "/system/update/check",
        "picam",
        "Vigil is updated by its package manager or cargo, not by git fetch",
    ),
    (
        "GET",
        "/api/system/gpu",
        "HSI",
        "detection runs on the CPU; no GPU is used",
    ),
    (
        "GET",
        "/api/system/gpu/history",
        "HSI",
        "detection runs on the CPU; no GPU is used",
    ),
    ("GET", "/api/ai-audit/events/{event_id}", "HSI", LLM),
    (
        "POST",
        "/api/ai-audit/events/{event_id}/evaluate",
        "HSI",
        LLM,
    ),
    ("GET", "/api/ai-audit/stats", "HSI", LLM),
    ("GET", "/api/ai-audit/leaderboard", "HSI", LLM),
    ("GET", "/api/ai-audit/recommendations", "HSI", LLM),
    ("POST", "/api/ai-audit/batch", "HSI", LLM),
    ("GET", "/api/ai-audit/prompts", "HSI", LLM),
    ("GET", "/api/ai-audit/prompts/{model}", "HSI", LLM),
    ("PUT", "/api/ai-audit/prompts/{model}", "HSI", LLM),
    ("GET", "/api/ai-audit/prompts/export", "HSI", LLM),
    ("GET", "/api/ai-audit/prompts/history", "HSI", LLM),
    (
        "POST",
        "/api/ai-audit/prompts/history/{version_id}",
        "HSI",
        LLM,
    ),
    ("POST", "/api/ai-audit/prompts/test", "HSI", LLM),
    ("POST", "/api/ai-audit/prompts/import", "HSI", LLM),
    ("POST", "/api/ai-audit/prompts/import/preview", "HSI", LLM),
    ("GET", "/api/ai-audit/prompt-config/{model}", "HSI", LLM),
    ("PUT", "/api/ai-audit/prompt-config/{model}", "HSI", LLM),
];

pub(super) fn routes(r: &mut Router) {
    for &(method, path, _, reason) in UNSUPPORTED {
        let m = match method {
            "GET" => GET,
            "POST" => POST,
            "PUT" => PUT,
            _ => DELETE,
        };
        r.add(m, path, "unsupported", reason, move |_: Ctx| {
            not_implemented(reason)
        });
    }
}

async fn not_implemented(reason: &'static str) -> Reply {
    Err(ApiError::Status(
        StatusCode::NOT_IMPLEMENTED,
        format!("not served by Vigil: {reason}"),
    ))
}
