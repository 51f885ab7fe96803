//! A real SMTP server for the mail tests: Python's `aiosmtpd` running tests/py/smtp_sink.py
//! (in the virtualenv tests/py/.venv, made on first use from tests/py/requirements.txt), told
//! per test to answer 451 or 550 or to hold a message. What it accepted is parsed by Python's
//! `email` package (headers, MIME parts) and read back as JSON.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

fn py_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// The virtualenv's python with aiosmtpd, made once per process (and kept across runs).
pub async fn python() -> PathBuf {
    static READY: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let venv = py_dir().join(".venv");
            let python = venv.join("bin").join("python");
            let ready = tokio::process::Command::new(&python)
                .args(["-c", "import aiosmtpd, prometheus_client, trustme"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .is_ok_and(|s| s.success());
            if !ready {
                if !python.exists() {
                    let made = tokio::process::Command::new("python3")
                        .args(["-m", "venv"])
                        .arg(&venv)
                        .status()
                        .await
                        .expect("python3 is required");
                    assert!(made.success(), "python3 -m venv failed");
                }
                let out = tokio::process::Command::new(venv.join("bin").join("pip"))
                    .args(["install", "-q", "-r"])
                    .arg(py_dir().join("requirements.txt"))
                    .output()
                    .await
                    .expect("pip");
                assert!(
                    out.status.success(),
                    "pip install failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            python
        })
        .await
        .clone()
}

/// How the server answers.
#[derive(Debug, Clone, Default)]
pub struct SinkScript {
    /// The first N recipients get 451.
    pub tempfail: u32,
    /// These addresses get 550.
    pub reject: Vec<String>,
    /// The first message's DATA is answered after this long (kept only if the client is
    /// still there).
    pub hold_first: Option<Duration>,
    /// TLS as a relay in production speaks it, with a certificate from a fresh test CA
    /// (see [`SmtpSink::ca_file`]).
    pub tls: Option<SinkTls>,
    /// AUTH required with these credentials (only offered over TLS).
    pub auth: Option<(String, String)>,
}

/// How the sink speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain first, `STARTTLS` required before `MAIL` (port 587 style).
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465 style).
    Implicit,
}

/// A running SMTP server; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: tempdir::Dir,
    child: tokio::process::Child,
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl SmtpSink {
    pub async fn start(script: SinkScript) -> SmtpSink {
        let python = python().await;
        let dir = std::env::temp_dir()
            .join("marketplace-smtp")
            .join(uuid::Uuid::now_v7().simple().to_string());
        std::fs::create_dir_all(&dir).expect("sink dir");
        let mut cmd = tokio::process::Command::new(python);
        cmd.arg(py_dir().join("smtp_sink.py"))
            .arg("--dir")
            .arg(&dir)
            .arg("--tempfail")
            .arg(script.tempfail.to_string());
        for r in &script.reject {
            cmd.arg("--reject").arg(r);
        }
        match script.tls {
            Some(SinkTls::StartTls) => {
                cmd.args(["--tls", "starttls"]);
            }
            Some(SinkTls::Implicit) => {
                cmd.args(["--tls", "implicit"]);
            }
            None => {}
        }
        if let Some((user, password)) = &script.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        if let Some(hold) = script.hold_first {
            cmd.arg("--hold-first-secs")
                .arg(hold.as_secs_f64().to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the SMTP sink starts within 30 s")
        .expect("read the port");
        let port: u16 = line.trim().parse().expect("the sink prints its port");
        SmtpSink {
            port,
            dir: tempdir::Dir(dir),
            child,
        }
    }

    /// `smtp://127.0.0.1:PORT` (plain, a local relay).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The PEM file of the test CA that issued the sink's certificate ("localhost"), for
    /// `SMTP_TLS_CA_FILE`; only with [`SinkScript::tls`].
    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.0.join("ca.pem")
    }

    fn lines(&self, file: &str) -> Vec<Value> {
        std::fs::read_to_string(self.dir.0.join(file))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Every message accepted so far, parsed.
    pub fn messages(&self) -> Vec<Value> {
        self.lines("messages.jsonl")
    }

    /// The accepted messages addressed to `email`.
    pub fn messages_to(&self, email: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m["rcpt_tos"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|a| a.as_str() == Some(email)))
            })
            .collect()
    }

    /// What happened so far (`rcpt`, `tempfail`, `reject`, `data-held`, `accepted`, ...).
    pub fn events(&self) -> Vec<String> {
        self.lines("events.jsonl")
            .iter()
            .filter_map(|e| e["event"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// The content of the first MIME part of `message` with this content type.
pub fn part<'a>(message: &'a Value, content_type: &str) -> Option<&'a str> {
    message["parts"]
        .as_array()?
        .iter()
        .find(|p| p["content_type"] == content_type)
        .and_then(|p| p["content"].as_str())
}
