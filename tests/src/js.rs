//! Running node tools of `tests/js` (npm packages installed with `npm ci` on first use).

use std::path::PathBuf;
use std::process::{Output, Stdio};

/// `tests/js`.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Runs `cmd args` in `tests/js` with extra environment; panics when it cannot start.
pub async fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = tokio::process::Command::new(cmd);
    c.args(args)
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e} (node and npm are required)"))
}

/// Makes sure these npm packages are installed in `tests/js` (runs `npm ci` when one is
/// missing), once per test process so tests side by side do not install over each other.
pub async fn ensure_packages(packages: &[&str]) {
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _once = INSTALL.lock().await;
    let modules = js_dir().join("node_modules");
    if packages.iter().all(|p| modules.join(p).exists()) {
        return;
    }
    let out = run("npm", &["ci", "--no-audit", "--no-fund"], &[]).await;
    assert!(
        out.status.success(),
        "npm ci failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
