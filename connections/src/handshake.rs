//! Who may connect: the handshake's token (auth, header or cookie), the cookie's origin, the
//! token's expiry (the socket is disconnected when it ends), and the rooms a socket joins on
//! connect (at once, or after replaying what it missed: see [`crate::live`]).

use std::sync::Arc;
use std::time::Duration;

use kernel::ApiError;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

use crate::client_events::on_event;
use crate::emitter::SocketEmitter;
use crate::gateway::Gateway;
use catalog::rooms::own_rooms;
use kernel::AuthUser;

/// Why a handshake was refused. The client's `connect_error` carries this text.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("unauthorized: a valid token is required")]
    Unauthorized,
    #[error("unauthorized: origin not allowed for cookie authentication")]
    Origin,
    #[error("unavailable: try again later")]
    Unavailable,
}

/// Ends the socket when its token expires; aborted when the socket leaves first.
#[derive(Clone)]
struct ExpiryTimer(tokio::task::AbortHandle);

/// Disconnects `s` (the client sees `disconnect` with `io server disconnect`) at `until`
/// (Unix seconds), the moment its token stops being accepted.
fn schedule_expiry<A: Adapter>(s: &SocketRef<A>, until: i64) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let left_ms = until.saturating_mul(1000).saturating_sub(now_ms).max(0);
    let delay = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
    let socket = s.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(e) = socket.disconnect() {
            tracing::debug!(error = %e, "expired socket already gone");
        }
    });
    s.extensions.insert(ExpiryTimer(task.abort_handle()));
}

/// The handshake token: `auth.token`, then `Authorization: Bearer`, then the `token` cookie.
/// Returns the token and whether it came from the cookie.
fn handshake_token(auth: &Value, headers: &http::HeaderMap) -> Option<(String, bool)> {
    if let Some(t) = auth
        .get("token")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some((t.to_owned(), false));
    }
    if let Some(h) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = h
            .trim()
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
    {
        return Some((t.to_owned(), false));
    }
    for value in headers.get_all(http::header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k.trim() == "token"
                && !v.trim().is_empty()
            {
                return Some((v.trim().trim_matches('"').to_owned(), true));
            }
        }
    }
    None
}

/// `auth.lastEventId` as a non-negative integer (a number or a numeric string).
fn last_event_id(auth: &Value) -> Option<i64> {
    let v = auth.get("lastEventId")?;
    let id = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (id >= 0).then_some(id)
}

/// Connect middleware: authenticates the handshake and registers the socket's handlers.
pub(crate) async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    State(gw): State<Arc<Gateway>>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refusal> {
    let auth = auth.unwrap_or(Value::Null);
    let parts = s.req_parts();
    let (token, from_cookie) =
        handshake_token(&auth, &parts.headers).ok_or(Refusal::Unauthorized)?;
    if from_cookie
        && !crate::origin::cookie_origin_allowed(parts, &gw.cors_origins, &gw.state.proxies)
    {
        return Err(Refusal::Origin);
    }
    let (user, until) = match gw.state.auth.authenticate_until(&token).await {
        Ok(u) => u,
        Err(ApiError::Unauthorized) => return Err(Refusal::Unauthorized),
        Err(e) => {
            tracing::warn!(error = %e, "socket handshake could not be checked");
            return Err(Refusal::Unavailable);
        }
    };
    // Without a replay the socket joins its rooms here, before socketioxide sends the connect
    // packet: every event committed after the client saw `connect` then reaches it. (The
    // connect handler runs only after that packet is out.) With `lastEventId` the connect
    // handler replays and then joins, under the lock live delivery takes.
    if last_event_id(&auth).is_none() {
        if let Err(e) = gw.fix_live_start().await {
            tracing::warn!(error = %e, "socket handshake could not fix where live delivery starts");
            return Err(Refusal::Unavailable);
        }
        s.join(own_rooms(user.id, user.role));
    }
    s.extensions.insert(user);
    register_handlers(&s);
    schedule_expiry(&s, until);
    Ok(())
}

fn register_handlers<A: Adapter>(s: &SocketRef<A>) {
    // One handler for every client event rather than one `on` per event: socketioxide keeps
    // a handler table per socket, and 13 entries cost ~1 KB on each of them.
    s.on_fallback(on_event::<A>);
    s.on_disconnect(
        |s: SocketRef<A>, io: SocketIo<A>, State(gw): State<Arc<Gateway>>| async move {
            if let Some(ExpiryTimer(timer)) = s.extensions.get::<ExpiryTimer>() {
                timer.abort();
            }
            metrics::gauge!(kernel::monitor::SOCKETS_CONNECTED).decrement(1.0);
            gw.presence
                .disconnected(&gw, &SocketEmitter::new(io), &s)
                .await;
        },
    );
}

/// Connect handler: with `auth.lastEventId`, replays and then joins the socket's own rooms
/// (without it [`authenticate`] joined them); counts the socket for presence.
pub(crate) async fn on_connect<A: Adapter>(
    s: SocketRef<A>,
    io: SocketIo<A>,
    State(gw): State<Arc<Gateway>>,
    TryData(auth): TryData<Value>,
) {
    // Called once per connected socket, as its disconnect handler is (which decrements).
    metrics::gauge!(kernel::monitor::SOCKETS_CONNECTED).increment(1.0);
    let Some(user) = s.extensions.get::<AuthUser>() else {
        let _ = s.disconnect();
        return;
    };
    let emitter = SocketEmitter::new(io);
    // Without `lastEventId` the middleware has joined the rooms already.
    if let Some(after) = auth.ok().as_ref().and_then(last_event_id) {
        let rooms = own_rooms(user.id, user.role);
        gw.replay_then_join(&emitter, &s, user, after, rooms).await;
    }
    gw.presence.connected(&gw, &emitter, &s, user).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_token_comes_from_auth_then_header_then_cookie() {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "a=b; token=fromcookie".parse().unwrap(),
        );
        assert_eq!(
            handshake_token(&json!({}), &h),
            Some(("fromcookie".into(), true))
        );
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer fromheader".parse().unwrap(),
        );
        assert_eq!(
            handshake_token(&json!({}), &h),
            Some(("fromheader".into(), false))
        );
        assert_eq!(
            handshake_token(&json!({ "token": "Bearer x" }), &h),
            Some(("Bearer x".into(), false))
        );
        assert_eq!(
            handshake_token(&json!({ "token": 5 }), &http::HeaderMap::new()),
            None
        );
    }

    #[test]
    fn last_event_id_is_a_non_negative_integer() {
        assert_eq!(last_event_id(&json!({ "lastEventId": "12" })), Some(12));
        assert_eq!(last_event_id(&json!({ "lastEventId": 7 })), Some(7));
        assert_eq!(last_event_id(&json!({ "lastEventId": -1 })), None);
        assert_eq!(last_event_id(&json!({ "lastEventId": "x" })), None);
        assert_eq!(last_event_id(&json!({})), None);
    }
}
