//! `cargo xtask test`: README's test command. It makes a fresh machine of this kind ready, then
//! runs the whole suite:
//!
//! - Redis on 127.0.0.1:6379 (the cluster tests use it, a key prefix per test): started with
//!   `redis-server` when nothing answers there (installed with apt-get when it is missing);
//! - Debian's Chromium at `/usr/bin/chromium` for the admin console's browser tests, installed
//!   with apt-get when missing (never a downloaded browser);
//! - the npm packages of `tests/js` from its lock file (`npm ci`) and the Python packages of
//!   `tests/py` in its virtualenv (from `requirements.txt`), when not installed yet;
//! - the `marketplace` binary (the cluster tests run it as separate processes);
//!
//! then `cargo test --workspace --no-fail-fast`, with `TEST_DATABASE_URL` from `--postgres`
//! (each test makes its own throwaway database there). Arguments after `--` go to `cargo test`.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::workspace::Result;

const REDIS: &str = "127.0.0.1:6379";
const CHROMIUM: &str = "/usr/bin/chromium";

pub fn run(root: &Path, postgres: Option<String>, cargo_args: &[String]) -> Result<()> {
    ensure_redis()?;
    ensure_chromium()?;
    ensure_npm(&root.join("tests/js"))?;
    ensure_python(&root.join("tests/py"))?;
    step("the marketplace binary (the cluster tests run it as separate processes)");
    status(cargo(root).args(["build", "--workspace", "--bin", "marketplace"]))?;
    let mut test = cargo(root);
    test.args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_args);
    match &postgres {
        Some(url) => {
            step(&format!(
                "tests on PostgreSQL ({url}; a throwaway database per test)"
            ));
            test.env("TEST_DATABASE_URL", url);
        }
        None => {
            step("tests on SQLite (a fresh database file per test)");
            test.env_remove("TEST_DATABASE_URL");
        }
    }
    status(&mut test)
}

fn step(what: &str) {
    println!("== {what}");
}

fn cargo(root: &Path) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root);
    c
}

/// Runs `command`, its output going to ours; an error unless it succeeds.
fn status(command: &mut Command) -> Result<()> {
    let what = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `apt-get update` once, then `apt-get install -y <packages>` (as root, or through sudo).
fn apt_install(packages: &[&str]) -> Result<()> {
    if !found("apt-get") {
        return Err(format!(
            "{} missing and this machine has no apt-get: install it and run again",
            packages.join(", ")
        ));
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let run = |args: &[&str]| {
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        status(&mut c)
    };
    run(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend_from_slice(packages);
    run(&args)
}

fn redis_answers() -> bool {
    let addr: SocketAddr = REDIS.parse().expect("a socket address");
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    use std::io::{Read, Write};
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut answer).is_ok_and(|n| n >= 5)
        && answer.starts_with(b"+PONG")
}

fn ensure_redis() -> Result<()> {
    if redis_answers() {
        return Ok(());
    }
    if !found("redis-server") {
        step("apt-get install redis-server (the cluster tests need Redis)");
        apt_install(&["redis-server"])?;
    }
    step(&format!(
        "starting redis-server on {REDIS} (keeps nothing on disk)"
    ));
    status(Command::new("redis-server").args([
        "--bind",
        "127.0.0.1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "yes",
    ]))?;
    for _ in 0..50 {
        if redis_answers() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "redis-server started but nothing answers on {REDIS}"
    ))
}

fn ensure_chromium() -> Result<()> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    step("apt-get install chromium (Debian's, for the admin console's browser tests)");
    apt_install(&["chromium"])
}

fn ensure_npm(dir: &Path) -> Result<()> {
    if dir.join("node_modules/.package-lock.json").exists() {
        return Ok(());
    }
    if !found("npm") {
        step("apt-get install nodejs npm (the Socket.IO client tests run on Node.js)");
        apt_install(&["nodejs", "npm"])?;
    }
    step("npm ci in tests/js (from its lock file)");
    status(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
    )
}

fn ensure_python(dir: &Path) -> Result<()> {
    let python = dir.join(".venv/bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import aiosmtpd, prometheus_client, trustme"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ready {
        return Ok(());
    }
    step("a virtualenv in tests/py with its requirements (aiosmtpd, ...)");
    if !python.exists() {
        status(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(dir.join(".venv")),
        )?;
    }
    status(
        Command::new(dir.join(".venv/bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(dir.join("requirements.txt")),
    )
}
