//! The SMTP side: the relay's URL, the sender, and what a refusal means.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::Error as SmtpError;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};

/// `SMTP_URL` and `MAIL_FROM`, checked.
#[derive(Clone)]
pub struct SmtpSettings {
    /// May hold the relay's password.
    url: SecretString,
    pub from: Mailbox,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &"[REDACTED]")
            .field("from", &self.from.to_string())
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
}

impl SettingsError {
    /// The variable at fault.
    pub fn var(&self) -> &'static str {
        match self {
            Self::Url(_) => "SMTP_URL",
            Self::From(_) => "MAIL_FROM",
        }
    }
    /// Why, without the variable's name.
    pub fn message(&self) -> &str {
        match self {
            Self::Url(m) | Self::From(m) => m,
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
        })
    }
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
        let transport =
            match AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.url.expose_secret()) {
                Ok(builder) => builder.timeout(Some(SMTP_TIMEOUT)).build(),
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
