//! `/api/email/unsubscribe`: RFC 8058 one-click unsubscribe. No bearer token: the signed
//! token in the link names the user. A `POST` with the form body `List-Unsubscribe=One-Click`
//! turns their email off; a `GET` (what a mail scanner or a click does) only shows a page
//! whose button makes that `POST`.

use axum::Extension;
use axum::extract::State;
use axum::response::Html;
use catalog::contract::Page;
use kernel::error::{ErrorCode, Problem};
use kernel::extract::{Query, RawBody};
use kernel::pagination::PageParams;
use kernel::{ApiError, AppState, AuthUser, Result};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::digest::MailFailure;
use crate::token::Signer;

pub fn router(signer: Signer) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page, unsubscribe))
        .routes(routes!(failures))
        .layer(Extension(signer))
}

/// The token from an email's `List-Unsubscribe` link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenParam {
    /// The signed token naming the user (from the email's link).
    pub token: String,
}

fn verified(signer: &Signer, token: &str) -> Result<Uuid> {
    signer.verify(token).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidUnsubscribeToken,
            "this unsubscribe link is not valid (altered or incomplete)",
        )
    })
}

/// A page with one button that unsubscribes (a `GET` alone never does: mail scanners follow
/// links).
#[utoipa::path(get, path = "/api/email/unsubscribe", operation_id = "showUnsubscribePage", tag = "email",
    params(TokenParam),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "a page whose button makes the one-click `POST`"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "`invalid_unsubscribe_token`: an altered or incomplete token"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "no `token`"),
    ))]
async fn page(
    Extension(signer): Extension<Signer>,
    Query(param): Query<TokenParam>,
) -> Result<Html<String>> {
    verified(&signer, &param.token)?;
    // The token is base64url (checked above), so it is safe inside an attribute.
    Ok(Html(format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Unsubscribe</title></head>
<body style="font-family: sans-serif; max-width: 30em; margin: 3em auto;">
<h1>Stop marketplace emails?</h1>
<p>You will no longer get emails about unread notifications. You can turn them on again in your notification settings.</p>
<form method="post" action="/api/email/unsubscribe?token={token}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button>
</form>
</body></html>
"#,
        token = param.token.trim()
    )))
}

/// One-click unsubscribe (RFC 8058): turns email off for the user the token names.
/// Idempotent. The body must be the form `List-Unsubscribe=One-Click`.
#[utoipa::path(post, path = "/api/email/unsubscribe", operation_id = "unsubscribeFromEmail", tag = "email",
    params(TokenParam),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click`"),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "unsubscribed: email is off for that user"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "`invalid_unsubscribe_token` (nothing changes), or `invalid_body`: not `List-Unsubscribe=One-Click`"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "body too large"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "no `token`"),
    ))]
async fn unsubscribe(
    State(db): State<DatabaseConnection>,
    Extension(signer): Extension<Signer>,
    Query(param): Query<TokenParam>,
    RawBody(body): RawBody,
) -> Result<Html<String>> {
    let user_id = verified(&signer, &param.token)?;
    let one_click = body
        .split(|b| *b == b'&')
        .any(|pair| pair == b"List-Unsubscribe=One-Click");
    if !one_click {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidBody,
            "the body must be the form `List-Unsubscribe=One-Click` (RFC 8058)",
        ));
    }
    if auth::user(&db, user_id).await?.is_some() {
        notifications::set_email_off(&db, user_id).await?;
        tracing::info!(%user_id, "unsubscribed from email");
    }
    Ok(Html(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribed</title></head>\
         <body style=\"font-family: sans-serif; max-width: 30em; margin: 3em auto;\"><h1>Unsubscribed</h1>\
         <p>You will no longer get marketplace emails.</p></body></html>\n"
            .to_owned(),
    ))
}

/// Emails that failed (admins), newest first: digests whose recipient the relay refused for
/// good (`bounced`; the address is marked undeliverable and gets no more email) and digests
/// failing now (`failing`: temporary failures, retried with growing pauses; one still failing
/// after its last attempt is also in `GET /api/admin/failed-jobs`, where it can be retried).
#[utoipa::path(get, path = "/api/admin/mail-failures", operation_id = "listMailFailures", tag = "admin", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<MailFailure>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "not an admin"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "bad `limit` or `cursor`"),
    ))]
async fn failures(
    State(db): State<DatabaseConnection>,
    caller: AuthUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Page<MailFailure>>> {
    Ok(axum::Json(
        crate::digest::failures(&db, caller, &params).await?,
    ))
}
