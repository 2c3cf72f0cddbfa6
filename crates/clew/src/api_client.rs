//! The little HTTP client the CLI's query commands share.

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

/// Which Clew to ask, and as which tenant: the options every query command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of the Clew query API.
    #[arg(long, env = "CLEW_SERVER", default_value = "http://127.0.0.1:16686")]
    pub server: String,
    /// Tenant to read from (sent as X-Scope-OrgID).
    #[arg(long, env = "CLEW_TENANT")]
    pub tenant: Option<String>,
}

impl ServerArgs {
    /// [`get_json`] from this server as this tenant.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        get_json(&self.server, path, self.tenant.as_deref()).await
    }
}

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
