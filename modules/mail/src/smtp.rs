//! The SMTP side: the relay's URL, the sender, and what a refusal means.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// `SMTP_URL`, `MAIL_FROM` and `SMTP_TLS_CA_FILE`, checked.
#[derive(Clone)]
pub struct SmtpSettings {
    /// May hold the relay's password.
    url: SecretString,
    pub from: Mailbox,
    /// PEM certificates of a private CA that signed the relay's certificate, trusted besides
    /// the public roots (a relay inside the operator's network).
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &"[REDACTED]")
            .field("from", &self.from.to_string())
            .field("ca", &self.ca_pem.is_some())
            .finish()
    }
}

/// Which variable is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("SMTP_URL: {0}")]
    Url(String),
    #[error("MAIL_FROM: {0}")]
    From(String),
    #[error("SMTP_TLS_CA_FILE: {0}")]
    Ca(String),
}

impl SettingsError {
    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            Self::Url(_) => "SMTP_URL",
            Self::From(_) => "MAIL_FROM",
            Self::Ca(_) => "SMTP_TLS_CA_FILE",
        }
    }
    /// Why, without the variable's name.
    pub fn message(&self) -> &str {
        match self {
            Self::Url(m) | Self::From(m) | Self::Ca(m) => m,
        }
    }
}

impl SmtpSettings {
    /// Checks `smtp://host:port` (plain, a local relay), `smtp://…?tls=required` (STARTTLS) or
    /// `smtps://…` (implicit TLS), and a `MAIL_FROM` mailbox such as
    /// `Marketplace <no-reply@example.com>`.
    pub fn parse(url: &str, from: &str) -> Result<Self, SettingsError> {
        if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
            return Err(SettingsError::Url(
                "must start with smtp:// or smtps://".into(),
            ));
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| SettingsError::Url(format!("not a usable SMTP URL ({e})")))?;
        let from: Mailbox = from.parse().map_err(|e| {
            SettingsError::From(format!(
                "not a mailbox such as `Marketplace <no-reply@example.com>` ({e})"
            ))
        })?;
        Ok(Self {
            url: SecretString::from(url.to_owned()),
            from,
            ca_pem: None,
        })
    }

    /// Trusts the CA certificates of the PEM file at `path` for the relay's TLS, besides the
    /// public roots. Only with a TLS URL (`smtps://` or `?tls=required|opportunistic`).
    pub fn with_ca_file(mut self, path: &str) -> Result<Self, SettingsError> {
        if tls_mode(self.url.expose_secret()).is_none() {
            return Err(SettingsError::Ca(
                "SMTP_URL uses no TLS (smtps://, or smtp://...?tls=required)".into(),
            ));
        }
        let pem = std::fs::read(path)
            .map_err(|e| SettingsError::Ca(format!("cannot read {path}: {e}")))?;
        // lettre reads a PEM without certificates as an empty list: ask for one.
        let has_certificate = pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----");
        if !has_certificate {
            return Err(SettingsError::Ca(format!(
                "{path} holds no PEM certificate"
            )));
        }
        Certificate::from_pem(&pem)
            .map_err(|e| SettingsError::Ca(format!("not a PEM certificate: {e}")))?;
        self.ca_pem = Some(pem);
        Ok(self)
    }
}

/// How the URL asks for TLS, as lettre reads it: `smtps://` wraps the connection, `?tls=`
/// upgrades it with STARTTLS; `None` for plain SMTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    Wrapper,
    Required,
    Opportunistic,
}

fn tls_mode(url: &str) -> Option<TlsMode> {
    let url = url::Url::parse(url).ok()?;
    if url.scheme() == "smtps" {
        return Some(TlsMode::Wrapper);
    }
    match url.query_pairs().find(|(k, _)| k == "tls")?.1.as_ref() {
        "required" => Some(TlsMode::Required),
        "opportunistic" => Some(TlsMode::Opportunistic),
        _ => None,
    }
}

/// The TLS settings of `url` with `ca_pem` trusted besides the public roots.
fn tls_with_ca(url: &str, ca_pem: &[u8]) -> Result<Tls, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("no host")?.to_owned();
    let cert = Certificate::from_pem(ca_pem).map_err(|e| e.to_string())?;
    let params = TlsParameters::builder(host)
        .add_root_certificate(cert)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(match tls_mode(url) {
        Some(TlsMode::Wrapper) => Tls::Wrapper(params),
        Some(TlsMode::Opportunistic) => Tls::Opportunistic(params),
        Some(TlsMode::Required) | None => Tls::Required(params),
    })
}

/// The relay's answer to one email.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: a 4xx reply, a refused or dropped connection, a timeout, a TLS
    /// failure, or an authentication refusal (a configuration matter, not the recipient's).
    #[error("temporary mail failure: {0}")]
    Temporary(String),
    /// The relay refused the recipient for good (a 5xx reply).
    #[error("permanent mail refusal: {0}")]
    Permanent(String),
}

/// Sends emails through the configured relay (pooled connections, opened on first use).
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
}

/// The longest one SMTP exchange may take before it counts as a temporary failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Self {
        let url = settings.url.expose_secret();
        let transport = match AsyncSmtpTransport::<Tokio1Executor>::from_url(url) {
            Ok(mut builder) => {
                if let Some(pem) = &settings.ca_pem {
                    // `SmtpSettings::with_ca_file` checked URL and PEM; an error is not reached.
                    match tls_with_ca(url, pem) {
                        Ok(tls) => builder = builder.tls(tls),
                        Err(e) => tracing::error!(error = %e, "SMTP_TLS_CA_FILE not applied"),
                    }
                }
                builder.timeout(Some(SMTP_TIMEOUT)).build()
            }
            // `SmtpSettings::parse` checked the URL already; never reached.
            Err(_) => AsyncSmtpTransport::<Tokio1Executor>::unencrypted_localhost(),
        };
        Self {
            transport,
            from: settings.from.clone(),
        }
    }

    /// Hands one message to the relay. lettre's own timeout covers each read and write;
    /// the whole exchange is bounded too.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match tokio::time::timeout(SMTP_TIMEOUT * 3, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(SendError::Temporary(
                "the relay did not answer in time".into(),
            )),
        }
    }
}

/// 4xx, connection and TLS problems are temporary; a 5xx is a refusal of the recipient,
/// except authentication refusals (530, 534, 535, 538), which are the relay's configuration.
pub fn classify(e: &SmtpError) -> SendError {
    let text = e.to_string();
    if e.is_permanent() {
        let code = e.status().map(|c| c.to_string()).unwrap_or_default();
        if matches!(code.as_str(), "530" | "534" | "535" | "538") {
            return SendError::Temporary(text);
        }
        return SendError::Permanent(text);
    }
    SendError::Temporary(text)
}
