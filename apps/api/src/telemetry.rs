//! Logging: `RUST_LOG` filters, `LOG_FORMAT=json` for structured lines. Socket.IO's crates are
//! capped at INFO because at DEBUG they log the raw CONNECT packet, token included.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    let mut filter =
        EnvFilter::try_new(&config.rust_log).unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in [
        "socketioxide=info",
        "engineioxide=info",
        "sqlx=warn",
        "sea_orm=warn",
    ] {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
