//! Builds the web UI (`ui/`, TypeScript + Vite) into `ui/dist` when it is missing or older than its sources, so
//! that `cargo build` from a fresh clone embeds a current UI. Needs Node.js and npm only when a build is due.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

const INPUTS: &[&str] = &["src", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json"];

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui");
    let ui = ui.canonicalize().unwrap_or(ui);
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", ui.join(input).display());
    }
    let built = ui.join("dist/index.html");
    let newest_input = INPUTS.iter().filter_map(|i| newest_mtime(&ui.join(i))).max();
    let up_to_date = match (mtime(&built), newest_input) {
        (Some(out), Some(input)) => out >= input,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if up_to_date {
        return;
    }
    if Command::new("npm").arg("--version").output().is_err() {
        panic!(
            "\n\nThe web UI in {} must be built, but npm was not found.\nInstall Node.js 20.19+ with npm \
             (Debian: apt-get install nodejs npm) and build again.\n",
            ui.display()
        );
    }
    let installed = mtime(&ui.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < mtime(&ui.join("package-lock.json")) {
        // `npm install` (not `npm ci`): the lock records only this platform's optional native packages (rollup,
        // esbuild), which `npm ci`'s sync check rejects; with the lock in sync, `install` installs exactly it.
        npm(&ui, &["install", "--no-audit", "--no-fund"]);
    }
    npm(&ui, &["run", "build"]);
}

fn npm(dir: &Path, args: &[&str]) {
    let mut command = Command::new("npm");
    command.args(args).current_dir(dir);
    stdout_to_stderr(&mut command);
    let status = command.status().unwrap_or_else(|err| panic!("running npm {}: {err}", args.join(" ")));
    if !status.success() {
        panic!("`npm {}` in {} failed ({status}); see its output above", args.join(" "), dir.display());
    }
}

/// npm's output goes to stderr: cargo reads a build script's stdout as directives.
#[cfg(unix)]
fn stdout_to_stderr(command: &mut Command) {
    use std::os::fd::AsFd;
    if let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() {
        command.stdout(std::process::Stdio::from(stderr));
    }
}

#[cfg(not(unix))]
fn stdout_to_stderr(_: &mut Command) {}

fn mtime(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of any file below a directory.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    let mut newest = meta.modified().ok();
    let mut stack: Vec<PathBuf> = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                newest = newest.max(mtime(&p));
            }
        }
    }
    newest
}
