//! Running node tools of `tests/js` (npm packages installed with `npm ci` on first use).

use std::path::{Path, PathBuf};
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

/// Runs `node --test` on `file` (relative to `tests/js`) and fails the test with its output
/// unless every test passed and at least `min_tests` ran.
pub async fn node_test(file: &str, env: &[(&str, &str)], min_tests: u32) -> String {
    assert!(
        js_dir().join(Path::new(file)).exists(),
        "missing {file} in tests/js"
    );
    let out = run("node", &["--test", "--test-reporter=spec", file], env).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(
        out.status.success(),
        "node --test {file} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |label: &str| {
        stdout.lines().find_map(|l| {
            l.trim()
                .strip_prefix(&format!("ℹ {label} "))
                .and_then(|n| n.trim().parse::<u32>().ok())
        })
    };
    assert_eq!(count("fail"), Some(0), "{stdout}");
    assert!(
        count("pass").is_some_and(|n| n >= min_tests),
        "fewer tests ran than written:\n{stdout}"
    );
    stdout
}
