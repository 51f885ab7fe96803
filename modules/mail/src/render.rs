//! The digest email: plain text and HTML (minijinja, HTML autoescaped, so every text a user
//! typed — a title quoting a name, a body quoting a message — is escaped), links into
//! `APP_URL`, and the RFC 8058 one-click unsubscribe headers.

use catalog::contract::Notification;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

const TEXT: &str = "\
{% if count == 1 %}You have an unread notification{% else %}You have {{ count }} unread notifications{% endif %} on the marketplace.
{% for item in items %}
* {{ item.title }}
  {{ item.body }}
  {{ item.url }}
{% endfor %}
See everything: {{ inbox_url }}

You get this email because these stayed unread while you were away.
Stop these emails: {{ unsubscribe_url }}
";

const HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{ subject }}</title></head>
<body style="font-family: sans-serif; color: #222; max-width: 40em; margin: 0 auto; padding: 1em;">
<p>{% if count == 1 %}You have an unread notification{% else %}You have {{ count }} unread notifications{% endif %} on the marketplace.</p>
<ul style="padding-left: 1.2em;">
{% for item in items %}<li style="margin-bottom: 1em;"><a href="{{ item.url }}"><strong>{{ item.title }}</strong></a><br>{{ item.body }}</li>
{% endfor %}</ul>
<p><a href="{{ inbox_url }}">See everything</a></p>
<p style="font-size: small; color: #666;">You get this email because these stayed unread while you were away.
<a href="{{ unsubscribe_url }}">Stop these emails</a>.</p>
</body>
</html>
"#;

/// One line of the digest.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub title: String,
    pub body: String,
    pub url: String,
}

/// Where in the frontend a notification leads: its chat, else its request, else the inbox.
pub fn link(app_url: &str, n: &Notification) -> String {
    let id = |key: &str| {
        n.data
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
    };
    if let Some(chat) = id("chatId") {
        format!("{app_url}/chats/{chat}")
    } else if let Some(request) = id("requestId") {
        format!("{app_url}/requests/{request}")
    } else {
        format!("{app_url}/notifications")
    }
}

/// The subject line: the title itself for one notification.
pub fn subject(items: &[Item]) -> String {
    match items {
        [one] => one.title.clone(),
        many => format!("You have {} unread notifications", many.len()),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    // Both templates are constants of this file; a parse failure is a bug caught by its tests.
    let _ = env.add_template("digest.txt", TEXT);
    let _ = env.add_template("digest.html", HTML);
    env
}

/// The plain-text and HTML bodies.
pub fn bodies(
    items: &[Item],
    inbox_url: &str,
    unsubscribe_url: &str,
) -> Result<(String, String), minijinja::Error> {
    let env = environment();
    let ctx = context! {
        items => items,
        count => items.len(),
        subject => subject(items),
        inbox_url => inbox_url,
        unsubscribe_url => unsubscribe_url,
    };
    let text = env.get_template("digest.txt")?.render(&ctx)?;
    let html = env.get_template("digest.html")?.render(&ctx)?;
    Ok((text, html))
}

/// Builds the whole email to `to`.
pub fn message(
    from: &Mailbox,
    to: Mailbox,
    items: &[Item],
    inbox_url: &str,
    unsubscribe_url: &str,
) -> Result<Message, String> {
    let (text, html) = bodies(items, inbox_url, unsubscribe_url).map_err(|e| e.to_string())?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject(items))
        .date_now()
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{unsubscribe_url}>"),
        ))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(title: &str, body: &str) -> Item {
        Item {
            title: title.into(),
            body: body.into(),
            url: "https://app.example/requests/1".into(),
        }
    }

    #[test]
    fn html_escapes_what_users_typed_and_text_keeps_it_readable() {
        let items = [item("New offer", "<script>alert(1)</script> & \"more\"")];
        let (text, html) = bodies(
            &items,
            "https://app.example/notifications",
            "https://api.example/u?token=t",
        )
        .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;")
                || html.contains("&lt;script&gt;"),
            "{html}"
        );
        assert!(
            text.contains("<script>alert(1)</script> & \"more\""),
            "{text}"
        );
        assert!(text.contains("https://app.example/requests/1"));
    }

    #[test]
    fn the_subject_is_the_title_of_one_or_the_count_of_many() {
        assert_eq!(subject(&[item("A", "")]), "A");
        assert_eq!(
            subject(&[item("A", ""), item("B", "")]),
            "You have 2 unread notifications"
        );
    }
}
