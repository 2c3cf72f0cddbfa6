//! The little HTTP client the CLI's query commands share.

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

/// GETs `path` (with its query string) from a Clew query API and decodes the JSON answer; non-2xx answers become
/// errors carrying the server's message. `tenant` goes out as `X-Scope-OrgID`.
pub async fn get_json<T: DeserializeOwned>(server: &str, path: &str, tenant: Option<&str>) -> anyhow::Result<T> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let mut request = reqwest::Client::new().get(&url);
    if let Some(tenant) = tenant {
        request = request.header("X-Scope-OrgID", tenant);
    }
    let response = request.send().await.with_context(|| format!("requesting {url}"))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the response")?;
    if !status.is_success() {
        bail!("{url} answered {status}: {}", String::from_utf8_lossy(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("decoding the answer of {url}"))
}
