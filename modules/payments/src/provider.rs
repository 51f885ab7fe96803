//! The payment provider behind a trait: SHKeeper over HTTP, or the embedded sandbox.
//!
//! Every call either succeeds, fails because the provider said no ([`ProviderError::Rejected`],
//! answered 502 `provider_error`), or fails because it could not be reached in time
//! ([`ProviderError::Unavailable`], answered 503 `provider_unavailable`).

use kernel::error::ErrorCode;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered and refused (SHKeeper's `{ status: "error", message }`).
    #[error("{0}")]
    Rejected(String),
    /// The provider could not be reached, was too slow, or answered something unreadable.
    #[error("{0}")]
    Unavailable(String),
}

impl From<ProviderError> for kernel::ApiError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Rejected(m) => kernel::ApiError::BadGateway {
                code: ErrorCode::ProviderError,
                detail: format!("payment provider: {m}"),
            },
            ProviderError::Unavailable(m) => kernel::ApiError::Unavailable {
                code: ErrorCode::ProviderUnavailable,
                detail: format!("the payment provider is unavailable: {m}"),
            },
        }
    }
}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// What we ask an invoice for.
#[derive(Debug, Clone)]
pub struct InvoiceRequest {
    pub crypto: String,
    pub external_id: String,
    pub fiat: String,
    pub amount: Decimal,
    pub callback_url: String,
}

/// An invoice the provider made.
#[derive(Debug, Clone)]
pub struct Invoice {
    pub provider_id: String,
    /// Crypto to pay, decimal string.
    pub crypto_amount: String,
    pub exchange_rate: String,
    /// Deposit address.
    pub wallet: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoInfo {
    pub name: String,
    pub display_name: String,
}

/// What we ask a payout for.
#[derive(Debug, Clone)]
pub struct PayoutRequest {
    pub crypto: String,
    pub amount: Decimal,
    pub destination: String,
    pub external_id: String,
    pub callback_url: String,
}

/// The state of a payout task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Pending,
    Success { txid: String },
    Failure { reason: String },
}

/// What the provider knows of a payout by our id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalPayoutStatus {
    /// The provider has never seen this `external_id`: submitting it is safe.
    NotFound,
    InProgress,
    Success {
        txid: Option<String>,
    },
    Failed {
        reason: String,
    },
}

/// A payment provider. Implementations must be safe to call concurrently.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// `sandbox` or `shkeeper`.
    fn name(&self) -> &'static str;
    async fn create_invoice(&self, req: &InvoiceRequest) -> ProviderResult<Invoice>;
    async fn list_cryptos(&self) -> ProviderResult<Vec<CryptoInfo>>;
    /// Starts a payout; answers the provider's task id.
    async fn create_payout(&self, req: &PayoutRequest) -> ProviderResult<String>;
    async fn payout_task_status(&self, crypto: &str, task_id: &str) -> ProviderResult<TaskStatus>;
    async fn payout_status_by_external_id(
        &self,
        crypto: &str,
        external_id: &str,
    ) -> ProviderResult<ExternalPayoutStatus>;
}

/// SHKeeper's HTTP API. Its API key and payout password are kept as [`SecretString`]s and
/// exposed only into the request headers.
pub struct Shkeeper {
    base: String,
    api_key: SecretString,
    payout_user: Option<String>,
    payout_password: Option<SecretString>,
    payout_fee: Decimal,
    http: reqwest::Client,
}

/// How long any SHKeeper call may take.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

impl Shkeeper {
    pub fn new(
        base: &str,
        api_key: &SecretString,
        payout_user: Option<String>,
        payout_password: Option<SecretString>,
        payout_fee: Decimal,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()
            .unwrap_or_else(|e| {
                // Only a broken TLS backend makes this fail; calls are time-boxed anyway.
                tracing::error!(error = %e, "cannot build the SHKeeper HTTP client with timeouts");
                reqwest::Client::new()
            });
        Self {
            base: base.trim_end_matches('/').to_owned(),
            api_key: api_key.clone(),
            payout_user,
            payout_password,
            payout_fee,
            http,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn with_key(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.header("X-Shkeeper-Api-Key", self.api_key.expose_secret())
    }

    fn with_basic(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.payout_user {
            Some(user) => req.basic_auth(
                user,
                self.payout_password.as_ref().map(|p| p.expose_secret()),
            ),
            None => req,
        }
    }

    /// Sends and reads a JSON answer. SHKeeper reports errors as `{ status: "error", message }`,
    /// often with HTTP 200: that is a rejection whatever the HTTP status.
    async fn call(&self, req: reqwest::RequestBuilder) -> ProviderResult<(u16, Value)> {
        let exchange = async {
            let res = req
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(describe(&e)))?;
            let status = res.status().as_u16();
            let bytes = res
                .bytes()
                .await
                .map_err(|e| ProviderError::Unavailable(describe(&e)))?;
            Ok::<_, ProviderError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(PROVIDER_TIMEOUT, exchange)
            .await
            .map_err(|_| ProviderError::Unavailable("timed out".to_owned()))??;
        let body: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) if status >= 500 => {
                return Err(ProviderError::Unavailable(format!("HTTP {status}")));
            }
            Err(_) => {
                return Err(ProviderError::Rejected(format!(
                    "unreadable answer (HTTP {status})"
                )));
            }
        };
        if body.get("status").and_then(Value::as_str) == Some("error") {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the provider reported an error")
                .chars()
                .take(500)
                .collect();
            return Err(ProviderError::Rejected(message));
        }
        if status == 404 {
            return Ok((status, body));
        }
        if status >= 500 {
            return Err(ProviderError::Unavailable(format!("HTTP {status}")));
        }
        if status >= 400 {
            let message = body.get("error").and_then(Value::as_str).map(str::to_owned);
            return Err(ProviderError::Rejected(
                message.unwrap_or_else(|| format!("HTTP {status}")),
            ));
        }
        Ok((status, body))
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// A JSON value that may be a string or a number, as a decimal string.
fn decimal_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Decimal::from_str(s.trim())
            .ok()
            .map(|d| d.normalize().to_string()),
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .ok()
            .map(|d| d.normalize().to_string()),
        _ => None,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn path_segment(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[derive(Deserialize)]
struct CryptoListItem {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[async_trait::async_trait]
impl PaymentProvider for Shkeeper {
    fn name(&self) -> &'static str {
        "shkeeper"
    }

    async fn create_invoice(&self, req: &InvoiceRequest) -> ProviderResult<Invoice> {
        let body = json!({
            "external_id": req.external_id,
            "fiat": req.fiat,
            "amount": req.amount.to_string(),
            "callback_url": req.callback_url,
        });
        let url = self.url(&format!(
            "/api/v1/{}/payment_request",
            path_segment(&req.crypto)
        ));
        let (_, v) = self
            .call(self.with_key(self.http.post(url)).json(&body))
            .await?;
        let wallet = text(v.get("wallet"));
        // An invoice must ask for a positive amount: callbacks are bounded by it.
        let amount = decimal_text(v.get("amount"))
            .filter(|a| Decimal::from_str(a).is_ok_and(|d| d > Decimal::ZERO));
        match (wallet, amount) {
            (Some(wallet), Some(crypto_amount)) => Ok(Invoice {
                provider_id: text(v.get("id")).unwrap_or_default(),
                crypto_amount,
                exchange_rate: decimal_text(v.get("exchange_rate"))
                    .unwrap_or_else(|| "0".to_owned()),
                wallet,
            }),
            _ => Err(ProviderError::Rejected(
                "the invoice answer lacks a wallet or a positive amount".to_owned(),
            )),
        }
    }

    async fn list_cryptos(&self) -> ProviderResult<Vec<CryptoInfo>> {
        let (_, v) = self
            .call(self.with_key(self.http.get(self.url("/api/v1/crypto"))))
            .await?;
        if let Some(list) = v.get("crypto_list").and_then(Value::as_array) {
            let items = list
                .iter()
                .filter_map(|i| serde_json::from_value::<CryptoListItem>(i.clone()).ok())
                .map(|i| CryptoInfo {
                    display_name: i.display_name.unwrap_or_else(|| i.name.clone()),
                    name: i.name,
                })
                .collect();
            return Ok(items);
        }
        let names = v
            .get("crypto")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(names
            .iter()
            .filter_map(Value::as_str)
            .map(|n| CryptoInfo {
                name: n.to_owned(),
                display_name: n.to_owned(),
            })
            .collect())
    }

    async fn create_payout(&self, req: &PayoutRequest) -> ProviderResult<String> {
        let body = json!({
            "amount": req.amount.to_string(),
            "destination": req.destination,
            "fee": self.payout_fee.to_string(),
            "external_id": req.external_id,
            "callback_url": req.callback_url,
        });
        let url = self.url(&format!("/api/v1/{}/payout", path_segment(&req.crypto)));
        let (_, v) = self
            .call(self.with_basic(self.http.post(url)).json(&body))
            .await?;
        text(v.get("task_id"))
            .ok_or_else(|| ProviderError::Rejected("the payout answer lacks task_id".to_owned()))
    }

    async fn payout_task_status(&self, crypto: &str, task_id: &str) -> ProviderResult<TaskStatus> {
        let url = self.url(&format!(
            "/api/v1/{}/task/{}",
            path_segment(crypto),
            path_segment(task_id)
        ));
        let (_, v) = self.call(self.with_basic(self.http.get(url))).await?;
        Ok(read_task(&v))
    }

    async fn payout_status_by_external_id(
        &self,
        crypto: &str,
        external_id: &str,
    ) -> ProviderResult<ExternalPayoutStatus> {
        let url = self.url(&format!(
            "/api/v1/{}/payout/status?external_id={}",
            path_segment(crypto),
            path_segment(external_id)
        ));
        let (status, v) = self.call(self.with_key(self.http.get(url))).await?;
        if status == 404 {
            return Ok(ExternalPayoutStatus::NotFound);
        }
        Ok(match v.get("status").and_then(Value::as_str) {
            Some("SUCCESS") => ExternalPayoutStatus::Success {
                txid: text(v.get("txid")),
            },
            Some("FAIL") | Some("FAILURE") => ExternalPayoutStatus::Failed {
                reason: text(v.get("message"))
                    .unwrap_or_else(|| "the provider reports the payout failed".to_owned()),
            },
            _ => ExternalPayoutStatus::InProgress,
        })
    }
}

/// Reads a task answer: `{ status: PENDING|SUCCESS|FAILURE, result }`. A SUCCESS whose items
/// include one with `status: "error"` is a failure.
pub fn read_task(v: &Value) -> TaskStatus {
    match v.get("status").and_then(Value::as_str) {
        Some("SUCCESS") => {
            let items = v
                .get("result")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(bad) = items
                .iter()
                .find(|i| i.get("status").and_then(Value::as_str) != Some("success"))
            {
                let reason = text(bad.get("message"))
                    .or_else(|| text(bad.get("error")))
                    .unwrap_or_else(|| "the provider reports an error for this payout".to_owned());
                return TaskStatus::Failure { reason };
            }
            let txid = items
                .iter()
                .filter_map(|i| i.get("txids").and_then(Value::as_array))
                .flatten()
                .find_map(Value::as_str)
                .map(str::to_owned);
            match txid {
                Some(txid) => TaskStatus::Success { txid },
                None => TaskStatus::Failure {
                    reason: "the provider reports success without a transaction".to_owned(),
                },
            }
        }
        Some("FAILURE") => {
            let reason = match v.get("result") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Null) | None => "the payout task failed".to_owned(),
                Some(other) => other.to_string(),
            };
            TaskStatus::Failure {
                reason: reason.chars().take(500).collect(),
            }
        }
        _ => TaskStatus::Pending,
    }
}

/// The embedded provider for local runs: no network, made-up addresses and hashes.
pub struct Sandbox;

const SANDBOX_CRYPTOS: &[(&str, &str, i64)] = &[
    ("BTC", "Bitcoin", 50_000),
    ("ETH", "Ethereum", 2_500),
    ("LTC", "Litecoin", 80),
    ("USDT", "Tether USD", 1),
];

fn digest_hex(input: &str) -> String {
    hex::encode(Sha256::digest(input.as_bytes()))
}

#[async_trait::async_trait]
impl PaymentProvider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn create_invoice(&self, req: &InvoiceRequest) -> ProviderResult<Invoice> {
        let Some((name, _, rate)) = SANDBOX_CRYPTOS.iter().find(|(n, _, _)| *n == req.crypto)
        else {
            return Err(ProviderError::Rejected(format!(
                "{} payment gateway is unavailable",
                req.crypto
            )));
        };
        let rate = Decimal::from(*rate);
        let crypto_amount = crate::money::div(req.amount, rate)
            .ok_or_else(|| ProviderError::Rejected("the amount is out of range".to_owned()))?
            .round_dp(8)
            .normalize();
        let id = digest_hex(&req.external_id);
        Ok(Invoice {
            provider_id: format!("sandbox-{}", &id[..12]),
            crypto_amount: crypto_amount.to_string(),
            exchange_rate: rate.to_string(),
            wallet: format!("sandbox-{}-{}", name.to_lowercase(), &id[12..44]),
        })
    }

    async fn list_cryptos(&self) -> ProviderResult<Vec<CryptoInfo>> {
        Ok(SANDBOX_CRYPTOS
            .iter()
            .map(|(n, d, _)| CryptoInfo {
                name: (*n).to_owned(),
                display_name: (*d).to_owned(),
            })
            .collect())
    }

    async fn create_payout(&self, req: &PayoutRequest) -> ProviderResult<String> {
        Ok(format!("sandbox-task-{}", req.external_id))
    }

    async fn payout_task_status(&self, _crypto: &str, task_id: &str) -> ProviderResult<TaskStatus> {
        Ok(TaskStatus::Success {
            txid: format!("0x{}", digest_hex(task_id)),
        })
    }

    async fn payout_status_by_external_id(
        &self,
        _crypto: &str,
        _external_id: &str,
    ) -> ProviderResult<ExternalPayoutStatus> {
        // The sandbox keeps nothing; a resubmission costs nothing either.
        Ok(ExternalPayoutStatus::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_task_with_an_error_item_is_a_failure() {
        let v = json!({ "status": "SUCCESS", "result": [{ "dest": "a", "amount": "1", "status": "error", "message": "no funds", "txids": [] }] });
        assert_eq!(
            read_task(&v),
            TaskStatus::Failure {
                reason: "no funds".into()
            }
        );
    }

    #[test]
    fn a_success_task_answers_its_first_txid() {
        let v = json!({ "status": "SUCCESS", "result": [{ "dest": "a", "amount": "1", "status": "success", "txids": ["t1", "t2"] }] });
        assert_eq!(read_task(&v), TaskStatus::Success { txid: "t1".into() });
        assert_eq!(
            read_task(&json!({ "status": "PENDING", "result": null })),
            TaskStatus::Pending
        );
        assert_eq!(
            read_task(&json!({ "status": "FAILURE", "result": "boom" })),
            TaskStatus::Failure {
                reason: "boom".into()
            }
        );
    }
}
