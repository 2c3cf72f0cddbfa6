//! The Clew server the demo reports to: `clew serve` as a child process, its own process group so that Ctrl-C
//! reaches the demo first (which flushes the shop's spans before stopping Clew).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

/// Ports the demo must know to talk to Clew; any other `clew serve` argument passes through.
#[derive(Clone, Debug)]
pub struct ClewPorts {
    pub otlp_grpc: u16,
    pub otlp_http: u16,
    pub query: u16,
}

pub struct ClewServer {
    child: Child,
    pub log: PathBuf,
    pub query_url: String,
}

impl ClewServer {
    pub async fn start(
        binary: &Path,
        data_dir: &Path,
        ports: &ClewPorts,
        extra: &[String],
    ) -> anyhow::Result<ClewServer> {
        let log = data_dir.join("clew.log");
        let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir.join("clew"))
            .args(["--otlp-grpc-port", &ports.otlp_grpc.to_string()])
            .args(["--otlp-http-port", &ports.otlp_http.to_string()])
            .args(["--query-port", &ports.query.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let child = command.spawn().with_context(|| format!("starting {} serve", binary.display()))?;
        let mut server = ClewServer { child, log, query_url: format!("http://127.0.0.1:{}", ports.query) };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/api/v1/services", self.query_url);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                let tail = std::fs::read_to_string(&self.log).unwrap_or_default();
                // The last log lines, without backtrace frames.
                let lines: Vec<&str> = tail.lines().filter(|l| !l.starts_with(' ') && !l.is_empty()).collect();
                let tail = &lines[lines.len().saturating_sub(10)..];
                bail!("clew serve exited with {status} before it was ready:\n{}", tail.join("\n"));
            }
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                // The query port may answer before a later port fails to bind (or another Clew may hold it):
                // only a child that stays up counts.
                tokio::time::sleep(Duration::from_millis(300)).await;
                if self.child.try_wait()?.is_none() {
                    return Ok(());
                }
                continue;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("clew serve was not ready after 30 s (log: {})", self.log.display())
    }

    /// Asks Clew to stop (SIGTERM) and waits for it; kills it if it takes too long.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        #[cfg(unix)]
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped); no memory is involved.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("clew serve exited with {status} (log: {})", self.log.display());
                }
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("clew serve did not stop within 20 s; killed (log: {})", self.log.display());
            }
        }
        Ok(())
    }
}
