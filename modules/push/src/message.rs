//! What one notification becomes as a push: the JSON a service worker receives, how urgent
//! it is and which pending push it replaces (RFC 8030 `Urgency` and `Topic`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use catalog::contract::Notification;
use catalog::events::EventName;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// The largest plaintext pushed. Push services refuse bodies above ~4 KB after encryption
/// (which adds 86 bytes); 3,000 leaves room for every service's limit.
pub const MAX_PAYLOAD_BYTES: usize = 3000;

/// RFC 8030 `Urgency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::High => "high",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "high" {
            Self::High
        } else {
            Self::Normal
        }
    }
}

/// One push, before encryption.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// JSON `{ id, kind, title, body, data, url }`, at most [`MAX_PAYLOAD_BYTES`].
    pub payload: String,
    pub urgency: Urgency,
    /// Replaces a push of the same topic still pending at the push service.
    pub topic: Option<String>,
}

#[derive(Serialize)]
struct Payload<'a> {
    id: Uuid,
    kind: &'a str,
    title: String,
    body: String,
    data: &'a Value,
    url: String,
}

/// The push for `n`, with its link into `app_url` (the frontend).
pub fn message(n: &Notification, app_url: &str) -> Message {
    Message {
        payload: payload(n, app_url),
        urgency: urgency(&n.kind),
        topic: topic(&n.data),
    }
}

/// `high` for chat messages and money that arrived (payments and payouts): people act on
/// them now, and the push service may wake a sleeping device for them; `normal` otherwise.
pub fn urgency(kind: &str) -> Urgency {
    match EventName::parse(kind) {
        Some(
            EventName::ChatNewMessage | EventName::PaymentCompleted | EventName::PayoutCompleted,
        ) => Urgency::High,
        _ => Urgency::Normal,
    }
}

/// The chat's or else the request's topic: `c` or `r` and the id's 16 bytes in base64url
/// (23 characters of the URL-safe alphabet; RFC 8030 allows 32). A newer push about the
/// same chat or request replaces one the device has not fetched yet.
pub fn topic(data: &Value) -> Option<String> {
    let id_of = |field: &str| {
        data.get(field)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    };
    let (prefix, id) = match (id_of("chatId"), id_of("requestId")) {
        (Some(chat), _) => ("c", chat),
        (None, Some(request)) => ("r", request),
        (None, None) => return None,
    };
    Some(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(id.as_bytes())))
}

/// Where a click on the push leads in the frontend: the chat, else the request, else the
/// notifications list.
pub fn link(app_url: &str, data: &Value) -> String {
    let base = app_url.trim_end_matches('/');
    let id = |field: &str| {
        data.get(field)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    };
    match (id("chatId"), id("requestId")) {
        (Some(chat), _) => format!("{base}/chats/{chat}"),
        (None, Some(request)) => format!("{base}/requests/{request}"),
        (None, None) => format!("{base}/notifications"),
    }
}

fn payload(n: &Notification, app_url: &str) -> String {
    let mut p = Payload {
        id: n.id,
        kind: &n.kind,
        title: n.title.clone(),
        body: n.body.clone(),
        data: &n.data,
        url: link(app_url, &n.data),
    };
    let json = |p: &Payload| serde_json::to_string(p).unwrap_or_default();
    let fits = |p: &Payload| json(p).len() <= MAX_PAYLOAD_BYTES;
    if fits(&p) {
        return json(&p);
    }
    // Shorten the body first, then the title; `data` (ids) and `url` are what the click
    // needs and stay whole.
    let body = std::mem::take(&mut p.body);
    if fits(&p) {
        p.body = longest_prefix(&body, |cut| {
            fits(&Payload {
                body: cut.to_owned(),
                ..p.clone_ref()
            })
        });
        return json(&p);
    }
    let title = std::mem::take(&mut p.title);
    if fits(&p) {
        p.title = longest_prefix(&title, |cut| {
            fits(&Payload {
                title: cut.to_owned(),
                ..p.clone_ref()
            })
        });
        return json(&p);
    }
    // Only ids and a link cannot be this long in practice; send what identifies it.
    p.url.clear();
    json(&p)
}

impl Payload<'_> {
    fn clone_ref(&self) -> Self {
        Payload {
            id: self.id,
            kind: self.kind,
            title: self.title.clone(),
            body: self.body.clone(),
            data: self.data,
            url: self.url.clone(),
        }
    }
}

/// The longest prefix of `text`, cut at a character boundary and ended with an ellipsis,
/// that `fits` accepts (found by bisection over characters; JSON escapes make the size of
/// a character vary from 1 to 12 bytes). Empty when none does.
fn longest_prefix(text: &str, fits: impl Fn(&str) -> bool) -> String {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let cut = |k: usize| format!("{}…", text[..bounds[k]].trim_end());
    let (mut lo, mut hi) = (0usize, bounds.len());
    // `lo` characters fit (0 trivially); more than `hi` do not.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if mid < bounds.len() && fits(&cut(mid)) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    if lo == 0 { String::new() } else { cut(lo) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog::contract::now;
    use serde_json::json;

    fn notification(kind: &str, body: String, data: Value) -> Notification {
        Notification {
            id: Uuid::now_v7(),
            recipient_id: Uuid::now_v7(),
            kind: kind.into(),
            title: "New chat message".into(),
            body,
            data,
            read_at: None,
            created_at: now(),
        }
    }

    #[test]
    fn chat_messages_and_payments_are_urgent_and_topics_follow_the_chat_or_request() {
        assert_eq!(urgency("chat:new-message"), Urgency::High);
        assert_eq!(urgency("payment:completed"), Urgency::High);
        assert_eq!(urgency("request:offer-received"), Urgency::Normal);
        let (chat, request) = (Uuid::now_v7(), Uuid::now_v7());
        let t = topic(&json!({ "chatId": chat, "requestId": request })).unwrap();
        assert!(t.len() <= 32 && t.starts_with('c'));
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(t, topic(&json!({ "requestId": request })).unwrap());
        assert_eq!(
            topic(&json!({ "requestId": request })),
            topic(&json!({ "requestId": request, "offerId": chat }))
        );
        assert_eq!(topic(&json!({ "payoutId": chat })), None);
    }

    #[test]
    fn a_long_payload_is_shortened_to_fit_and_stays_json() {
        let request = Uuid::now_v7();
        for filler in ["x", "é", "\"", "😀", "\u{1}"] {
            let n = notification(
                "request:offer-received",
                filler.repeat(5000),
                json!({ "requestId": request }),
            );
            let m = message(&n, "https://app.example.com/");
            assert!(
                m.payload.len() <= MAX_PAYLOAD_BYTES,
                "{filler}: {}",
                m.payload.len()
            );
            let v: Value = serde_json::from_str(&m.payload).unwrap();
            assert!(v["body"].as_str().unwrap().ends_with('…'));
            assert_eq!(
                v["url"],
                format!("https://app.example.com/requests/{request}")
            );
            assert_eq!(v["id"], json!(n.id));
            assert_eq!(v["data"]["requestId"], json!(request));
        }
        let short = notification("offer:accepted", "hi".into(), json!({}));
        let v: Value = serde_json::from_str(&message(&short, "http://x").payload).unwrap();
        assert_eq!(v["body"], "hi");
        assert_eq!(v["url"], "http://x/notifications");
    }
}
