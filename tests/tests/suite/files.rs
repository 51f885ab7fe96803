//! Files (issue 20): uploads checked from their bytes, images stored without metadata,
//! limits, who may see a file, signed links, attachments on messages and evidence, evidence
//! kept unchanged, unattached uploads removed by their durable job, and the same upload on an
//! S3-compatible store (the npm `s3rver`).

use std::time::Duration;

use marketplace_tests::files::{
    BOUNDARY, FIXTURE_COMMENT, S3rver, has_gps, jpeg_with_gps, png_bomb,
};
use marketplace_tests::story::{OfferedRequest, Party};
use marketplace_tests::{TestApp, TestUser, eventually};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

/// The upload test both stores run: a JPEG with GPS EXIF, an orientation tag and a comment
/// is stored upright, re-encoded, without any of them; its links serve it with the safe
/// headers, and its thumbnail is at most 320 px.
async fn photo_is_stored_upright_without_metadata(app: &TestApp) {
    let user = app.buyer().await;
    let sent = jpeg_with_gps(40, 20);
    assert!(has_gps(&sent), "the fixture carries GPS");
    let a = app
        .upload(&user, "holiday.jpg", Some("image/jpeg"), &sent)
        .await
        .expect(201);
    assert_eq!(a["contentType"], "image/jpeg");
    assert_eq!(a["name"], "holiday.jpg");
    // Orientation 6: the 40×20 pixels are shown 20×40.
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(20), Some(40))
    );
    let (status, headers, stored) = app.fetch_link(&s(&a, "url")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/jpeg");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("inline; filename=\"holiday.jpg\""),
        "{disposition}"
    );
    if !s(&a, "url").contains("X-Amz-") {
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["content-security-policy"], "sandbox");
    }
    assert!(!has_gps(&stored), "GPS EXIF must be gone");
    assert!(
        exif::Reader::new()
            .read_from_container(&mut std::io::Cursor::new(&stored))
            .is_err(),
        "no EXIF at all is kept"
    );
    assert!(
        !stored
            .windows(FIXTURE_COMMENT.len())
            .any(|w| w == FIXTURE_COMMENT),
        "the comment must be gone"
    );
    assert_eq!(a["size"].as_u64(), Some(stored.len() as u64));
    assert_eq!(s(&a, "sha256"), hex::encode(Sha256::digest(&stored)));
    let decoded = image::load_from_memory(&stored).expect("the stored image decodes");
    assert_eq!((decoded.width(), decoded.height()), (20, 40));
    let (status, _, thumb) = app.fetch_link(&s(&a, "thumbnailUrl")).await;
    assert_eq!(status, 200);
    let thumb = image::load_from_memory(&thumb).expect("the thumbnail decodes");
    assert!(thumb.width() <= 320 && thumb.height() <= 320);
    // The uploader sees it; nobody else does while it is unattached.
    app.get(
        &format!("/api/attachments/{}", s(&a, "id")),
        Some(&user.token),
    )
    .await
    .expect(200);
    let other = app.seller().await;
    assert_eq!(
        app.get(
            &format!("/api/attachments/{}", s(&a, "id")),
            Some(&other.token)
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn a_photo_is_stored_upright_without_gps_exif_or_comments_on_the_local_store() {
    let app = TestApp::spawn().await;
    photo_is_stored_upright_without_metadata(&app).await;
}

#[tokio::test]
async fn a_photo_is_stored_upright_without_gps_exif_or_comments_on_s3() {
    let s3 = S3rver::start().await;
    let app = TestApp::spawn_with(|env| env.extend(s3.env())).await;
    photo_is_stored_upright_without_metadata(&app).await;
    // The link is presigned for the store, path-style, answering with the stored type and
    // an RFC 6266 disposition.
    let user = app.buyer().await;
    let a = app.upload_photo(&user).await;
    let url = s(&a, "url");
    assert!(
        url.starts_with(&format!(
            "http://127.0.0.1:{}/{}/test-prefix/attachments/",
            s3.port, s3.bucket
        )),
        "{url}"
    );
    assert!(url.contains("response-content-disposition=inline"), "{url}");
    // A link made for the same object an hour ago has expired: the store refuses it.
    let presigner = files::S3Presigner::new(
        &s3.bucket,
        &files::S3Settings {
            endpoint: Some(format!("http://127.0.0.1:{}", s3.port)),
            region: "us-east-1".into(),
            ..Default::default()
        },
        "S3RVER".into(),
        "S3RVER".into(),
    )
    .expect("presigner");
    let key = format!("test-prefix/attachments/{}/original", s(&a, "id"));
    let old = presigner.get_url(
        &key,
        Duration::from_secs(600),
        &[],
        chrono::Utc::now() - chrono::Duration::hours(1),
    );
    assert_eq!(
        app.fetch_link(&old).await.0,
        403,
        "an expired presigned link"
    );
    let fresh = presigner.get_url(&key, Duration::from_secs(600), &[], chrono::Utc::now());
    assert_eq!(app.fetch_link(&fresh).await.0, 200);
}

#[tokio::test]
async fn html_named_png_svg_and_a_lying_declared_type_are_refused_with_415() {
    let app = TestApp::spawn().await;
    let user = app.buyer().await;
    let html = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>";
    let r = app.upload(&user, "cat.png", Some("image/png"), html).await;
    assert_eq!(
        (r.status, r.code()),
        (415, "unsupported_media_type"),
        "{:?}",
        r.body
    );
    assert_eq!(r.content_type, "application/problem+json");
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>"#;
    let r = app
        .upload(&user, "logo.svg", Some("image/svg+xml"), svg)
        .await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    let r = app.upload(&user, "logo.png", None, svg).await;
    assert_eq!(r.status, 415);
    let r = app
        .upload(&user, "a.png", Some("image/png"), &jpeg_with_gps(8, 8))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (415, "unsupported_media_type"),
        "a JPEG declared as PNG"
    );
    let r = app
        .upload(
            &user,
            "run.pdf",
            Some("application/pdf"),
            b"MZ\x90\x00\x03\x00\x00\x00",
        )
        .await;
    assert_eq!(r.status, 415, "an executable");
    // A PDF is stored as sent, as an attachment (never inline).
    let pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    let a = app
        .upload(&user, "Rechnung März.pdf", Some("application/pdf"), pdf)
        .await
        .expect(201);
    assert_eq!(a["contentType"], "application/pdf");
    assert_eq!(a["thumbnailUrl"], Value::Null);
    let (status, headers, bytes) = app.fetch_link(&s(&a, "url")).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, pdf);
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
    );
    assert_eq!(s(&a, "sha256"), hex::encode(Sha256::digest(pdf)));
    // Not multipart at all.
    let r = app
        .send(
            app.http
                .post(app.url("/api/uploads"))
                .bearer_auth(&user.token)
                .json(&json!({ "file": "x" })),
        )
        .await;
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type"));
    // No `file` part.
    let body = marketplace_tests::files::multipart_body("other", "a.pdf", None, pdf);
    let r = app
        .send(
            app.http
                .post(app.url("/api/uploads"))
                .bearer_auth(&user.token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
}

#[tokio::test]
async fn a_decompression_bomb_and_oversized_images_are_refused_with_422() {
    let app = TestApp::spawn().await;
    let user = app.buyer().await;
    // 10,000 × 10,000 one-bit pixels in a few kilobytes: 100 Mpx once decoded.
    let bomb = png_bomb(10_000, 10_000);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    let r = app
        .upload(&user, "bomb.png", Some("image/png"), &bomb)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (422, "validation_failed"),
        "{:?}",
        r.body
    );
    let r = app
        .upload(&user, "wide.png", Some("image/png"), &png_bomb(12_001, 1))
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    // A PNG whose data is garbage does not decode.
    let mut broken = b"\x89PNG\r\n\x1a\n".to_vec();
    broken.extend_from_slice(&[0x42; 200]);
    let r = app
        .upload(&user, "broken.png", Some("image/png"), &broken)
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    // Within the limits is fine.
    app.upload(&user, "ok.png", Some("image/png"), &png_bomb(2_000, 2_000))
        .await
        .expect(201);
}

/// This process's resident memory, in bytes (the app runs in this process).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

/// Sends a multipart upload of `size` bytes over a raw connection, a chunk at a time,
/// stopping when the server answers or stops reading; the answer's status line.
async fn stream_upload(app: &TestApp, token: &str, size: usize) -> (u16, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let total = head.len() + size + tail.len();
    let request = format!(
        "POST /api/uploads HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {total}\r\n\r\n{head}",
        app.addr
    );
    let writer = tokio::spawn(async move {
        let mut sent = 0usize;
        if wr.write_all(request.as_bytes()).await.is_err() {
            return sent;
        }
        let chunk = vec![b'0'; 64 * 1024];
        while sent < size {
            let n = chunk.len().min(size - sent);
            if wr.write_all(&chunk[..n]).await.is_err() {
                return sent;
            }
            sent += n;
        }
        let _ = wr.write_all(tail.as_bytes()).await;
        sent
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let status = loop {
        let n = tokio::time::timeout(Duration::from_secs(60), rd.read(&mut buf))
            .await
            .expect("an answer within 60 s")
            .expect("read the answer");
        assert!(n > 0, "the server closed without answering");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some(line) = text.lines().next().filter(|_| text.contains("\r\n")) {
            break line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .expect("a status code");
        }
    };
    drop(rd);
    let sent = writer.await.unwrap_or(0);
    (status, sent)
}

#[tokio::test]
async fn an_upload_over_the_limit_is_refused_while_reading_without_the_process_growing_by_it() {
    let app = TestApp::spawn_with(|env| {
        env.insert("UPLOAD_MAX_BYTES".into(), "1048576".into());
    })
    .await;
    let user = app.buyer().await;
    let before = rss();
    let size = 256 * 1024 * 1024;
    let (status, _sent) = stream_upload(&app, &user.token, size).await;
    assert_eq!(status, 413);
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 64 * 1024 * 1024,
        "the process grew by {} MiB while refusing a {} MiB upload",
        grown / (1024 * 1024),
        size / (1024 * 1024)
    );
    // Exactly at the limit is accepted: the limit bounds the file, not the envelope.
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.resize(1_048_576, b'0');
    app.upload(&user, "limit.pdf", Some("application/pdf"), &pdf)
        .await
        .expect(201);
    pdf.push(b'0');
    let r = app
        .upload(&user, "over.pdf", Some("application/pdf"), &pdf)
        .await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    // The metrics counted them by outcome.
    let metrics = app.send(app.http.get(app.url("/metrics"))).await;
    let _ = metrics;
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for family in [
        "marketplace_uploads_total",
        "marketplace_upload_bytes_total",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(family) && l.contains("outcome=\"too_large\"")),
            "{family} missing"
        );
    }
}

/// A request with two sellers' offers, the chat of the first and the second seller (who
/// competes for the same request).
async fn chat_and_competitor(app: &TestApp) -> (String, TestUser, TestUser, TestUser) {
    let r = app.request_with_offers(&["100.00", "110.00"]).await;
    let chat_id = app.chat_id(&r.sellers[0], &r.request_id).await;
    (chat_id, r.buyer, r.sellers[0].clone(), r.sellers[1].clone())
}

#[tokio::test]
async fn a_chat_file_is_seen_by_both_participants_and_by_no_stranger_or_competing_seller() {
    let app = TestApp::spawn().await;
    let (chat_id, buyer, seller, competitor) = chat_and_competitor(&app).await;
    let a = app.upload_photo(&seller).await;
    let id = s(&a, "id");
    let message = app
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
            json!({ "attachmentIds": [id] }),
        )
        .await
        .expect(201);
    assert_eq!(message["content"], "");
    assert_eq!(message["attachments"][0]["id"], id.as_str());
    assert_eq!(message["reactions"], json!([]));
    // Attached once only.
    let again = app
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
            json!({ "content": "again", "attachmentIds": [id] }),
        )
        .await;
    assert_eq!(again.status, 422, "{:?}", again.body);
    // Someone else's upload cannot be sent.
    let buyers_file = app.upload_photo(&buyer).await;
    let theft = app
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
            json!({ "attachmentIds": [s(&buyers_file, "id")] }),
        )
        .await;
    assert_eq!(theft.status, 422);
    // The buyer lists the message with the file and fresh links, and may fetch it.
    let page = app
        .get(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&buyer.token),
        )
        .await
        .expect(200);
    let listed = &page["items"][0]["attachments"][0];
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(app.fetch_link(&s(listed, "url")).await.0, 200);
    app.get(&format!("/api/attachments/{id}"), Some(&buyer.token))
        .await
        .expect(200);
    let stranger = app.buyer().await;
    for outsider in [&stranger, &competitor] {
        let r = app
            .get(&format!("/api/attachments/{id}"), Some(&outsider.token))
            .await;
        assert_eq!(r.status, 404, "{}", outsider.role);
        let r = app
            .send(
                app.http
                    .delete(app.url(&format!("/api/attachments/{id}")))
                    .bearer_auth(&outsider.token),
            )
            .await;
        assert_eq!(r.status, 404);
    }
    // The buyer may see it but not delete it (not theirs: 404); the uploader may.
    let r = app
        .send(
            app.http
                .delete(app.url(&format!("/api/attachments/{id}")))
                .bearer_auth(&buyer.token),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .send(
            app.http
                .delete(app.url(&format!("/api/attachments/{id}")))
                .bearer_auth(&seller.token),
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        app.get(&format!("/api/attachments/{id}"), Some(&seller.token))
            .await
            .status,
        404
    );
    assert_eq!(
        app.fetch_link(&s(listed, "url")).await.0,
        404,
        "the bytes are gone"
    );
    // Over 10 files, or none and no text.
    let ids: Vec<String> = (0..11).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let r = app
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
            json!({ "attachmentIds": ids }),
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .post(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&seller.token),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn chat_send_over_the_socket_attaches_files_too() {
    let app = TestApp::spawn().await;
    let chat = app.chat().await;
    let a = app.upload_photo(&chat.buyer).await;
    let mut seller_socket = app.socket(&chat.seller).await;
    let buyer_socket = app.socket(&chat.buyer).await;
    let ack = buyer_socket
        .ack(
            "chat:send",
            json!({ "chatId": chat.chat_id, "attachmentIds": [s(&a, "id")] }),
        )
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(ack["message"]["attachments"][0]["id"], a["id"]);
    let got = seller_socket
        .expect("chat:new-message", Duration::from_secs(10))
        .await;
    assert_eq!(got[0]["attachments"][0]["id"], a["id"]);
    assert_eq!(got[0]["reactions"], json!([]));
}

/// Signs a local link with the app's kept key, as the server does.
async fn sign(app: &TestApp, id: &str, variant: &str, expires: i64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.db().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT value FROM kept_secrets WHERE name = 'file-links'",
        ))
        .await
        .expect("query")
        .expect("the link key is kept");
    let key: String = row.try_get("", "value").expect("value");
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(format!("{id}:{variant}:{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn an_expired_or_altered_link_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let user = app.buyer().await;
    let a = app.upload_photo(&user).await;
    let id = s(&a, "id");
    let url = s(&a, "url");
    assert!(
        url.starts_with(&format!(
            "{}/api/attachments/{id}/content?expires=",
            app.base
        )),
        "{url}"
    );
    assert_eq!(app.fetch_link(&url).await.0, 200);
    // Properly signed, but expired a minute ago.
    let past = chrono::Utc::now().timestamp() - 60;
    let sig = sign(&app, &id, "original", past).await;
    let expired = app.url(&format!(
        "/api/attachments/{id}/content?expires={past}&signature={sig}"
    ));
    let (status, _, _) = app.fetch_link(&expired).await;
    assert_eq!(status, 403);
    // The same key signs what the server accepts (so the refusal above is the expiry).
    let future = chrono::Utc::now().timestamp() + 60;
    let sig = sign(&app, &id, "original", future).await;
    let good = app.url(&format!(
        "/api/attachments/{id}/content?expires={future}&signature={sig}"
    ));
    assert_eq!(app.fetch_link(&good).await.0, 200);
    // Altered: a later expiry, another signature, the thumbnail's signature on the original,
    // another file's id.
    let later = url.replace("expires=", "expires=9");
    assert_eq!(app.fetch_link(&later).await.0, 403);
    let flipped = {
        let (base, sig) = url.split_once("signature=").unwrap();
        let mut sig: Vec<char> = sig.chars().collect();
        sig[0] = if sig[0] == 'a' { 'b' } else { 'a' };
        format!("{base}signature={}", sig.into_iter().collect::<String>())
    };
    assert_eq!(app.fetch_link(&flipped).await.0, 403);
    let thumb = s(&a, "thumbnailUrl");
    let as_original = thumb.replace("&variant=thumbnail", "");
    assert_eq!(app.fetch_link(&as_original).await.0, 403);
    let other = app.upload_photo(&user).await;
    let moved = url.replace(&id, &s(&other, "id"));
    assert_eq!(app.fetch_link(&moved).await.0, 403);
    let (status, headers, _) = app.fetch_link(&flipped).await;
    assert_eq!(status, 403);
    assert_eq!(headers["content-type"], "application/problem+json");
}

/// A paid request of the first of two sellers who offered, disputed by the buyer; the second
/// seller competed for it.
async fn dispute_with_competitor(
    app: &TestApp,
) -> (marketplace_tests::story::OpenDispute, TestUser) {
    let r = app.request_with_offers(&["100.00", "110.00"]).await;
    let offered = OfferedRequest {
        buyer: r.buyer.clone(),
        seller: r.sellers[0].clone(),
        request_id: r.request_id.clone(),
        offer_id: s(&r.offers[0], "id"),
        price: "100.00".into(),
    };
    let accepted = app.accept(offered).await;
    let paid = app.pay_in_sandbox(accepted).await;
    let dispute = app.dispute(paid, Party::Buyer, "It arrived broken.").await;
    (dispute, r.sellers[1].clone())
}

#[tokio::test]
async fn evidence_files_are_kept_unchanged_and_seen_only_by_the_parties_and_admins() {
    let app = TestApp::spawn().await;
    let (d, competitor) = dispute_with_competitor(&app).await;
    let photo = app.upload_photo(&d.buyer).await;
    let id = s(&photo, "id");
    let ev = app
        .post(
            &format!("/api/disputes/{}/evidence", d.dispute_id),
            Some(&d.buyer.token),
            json!({ "description": "The frame is cracked.", "attachmentIds": [id] }),
        )
        .await
        .expect(201);
    assert_eq!(ev["attachments"][0]["id"], id.as_str());
    assert_eq!(ev["attachmentUrl"], Value::Null);
    // Deleting it, by its uploader, while the dispute exists: 409.
    let r = app
        .send(
            app.http
                .delete(app.url(&format!("/api/attachments/{id}")))
                .bearer_auth(&d.buyer.token),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "evidence_locked"));
    // The seller and an admin see it (the admin through the dispute), with its sha256
    // matching the bytes.
    let admin = app.admin().await;
    let detail = app
        .get(
            &format!("/api/disputes/{}", d.dispute_id),
            Some(&admin.token),
        )
        .await
        .expect(200);
    let shown = &detail["evidence"][0]["attachments"][0];
    let (status, _, bytes) = app.fetch_link(&s(shown, "url")).await;
    assert_eq!(status, 200);
    assert_eq!(s(shown, "sha256"), hex::encode(Sha256::digest(&bytes)));
    assert_eq!(s(shown, "sha256"), s(&photo, "sha256"));
    for viewer in [&d.seller, &admin] {
        app.get(&format!("/api/attachments/{id}"), Some(&viewer.token))
            .await
            .expect(200);
    }
    let stranger = app.seller().await;
    for outsider in [&competitor, &stranger] {
        assert_eq!(
            app.get(&format!("/api/attachments/{id}"), Some(&outsider.token))
                .await
                .status,
            404
        );
    }
    // Still there after the dispute is resolved: evidence stays evidence.
    app.post(
        &format!("/api/disputes/{}/resolve", d.dispute_id),
        Some(&admin.token),
        json!({ "resolution": "release_to_seller", "note": "photos show transit damage" }),
    )
    .await
    .expect(200);
    let r = app
        .send(
            app.http
                .delete(app.url(&format!("/api/attachments/{id}")))
                .bearer_auth(&d.buyer.token),
        )
        .await;
    assert_eq!(r.status, 409);
    let again = app
        .get(&format!("/api/attachments/{id}"), Some(&d.buyer.token))
        .await
        .expect(200);
    assert_eq!(again["sha256"], photo["sha256"]);
}

#[tokio::test]
async fn an_unattached_upload_is_removed_by_its_durable_job_and_an_attached_one_is_kept() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = TestApp::spawn().await;
    let chat = app.chat().await;
    let left = app.upload_photo(&chat.buyer).await;
    let sent = app.upload_photo(&chat.buyer).await;
    app.post(
        &format!("/api/chats/{}/messages", chat.chat_id),
        Some(&chat.buyer.token),
        json!({ "content": "see photo", "attachmentIds": [s(&sent, "id")] }),
    )
    .await
    .expect(201);
    let db = app.db().await;
    let backend = db.get_database_backend();
    let due = |id: String| {
        Statement::from_string(
            backend,
            format!(
                "SELECT run_at FROM timers WHERE kind = 'files.remove-unattached' AND key = '{id}'"
            ),
        )
    };
    // Each upload scheduled its removal 24 h after it was made, in the upload's transaction.
    for a in [&left, &sent] {
        let row = db
            .query_one_raw(due(s(a, "id")))
            .await
            .expect("query")
            .expect("a removal job");
        let run_at: chrono::DateTime<chrono::Utc> = row.try_get("", "run_at").expect("run_at");
        let created: chrono::DateTime<chrono::Utc> = s(a, "createdAt").parse().expect("createdAt");
        assert!(
            (run_at - created - chrono::Duration::hours(24))
                .num_seconds()
                .abs()
                <= 1
        );
    }
    // 24 hours pass.
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE timers SET run_at = $1 WHERE kind = $2",
        [
            (chrono::Utc::now() - chrono::Duration::seconds(1)).into(),
            "files.remove-unattached".into(),
        ],
    ))
    .await
    .expect("move the jobs");
    let left_url = s(&left, "url");
    let gone = eventually(Duration::from_secs(20), || async {
        let r = app
            .get(
                &format!("/api/attachments/{}", s(&left, "id")),
                Some(&chat.buyer.token),
            )
            .await;
        (r.status == 404).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the unattached upload was not removed");
    let bytes_gone = eventually(Duration::from_secs(20), || async {
        (app.fetch_link(&left_url).await.0 == 404).then_some(())
    })
    .await;
    assert!(bytes_gone.is_some());
    let jobs_done = eventually(Duration::from_secs(20), || async {
        let left = db.query_one_raw(due(s(&sent, "id"))).await.ok()?;
        left.is_none().then_some(())
    })
    .await;
    assert!(jobs_done.is_some(), "the attached upload's job ends too");
    app.get(
        &format!("/api/attachments/{}", s(&sent, "id")),
        Some(&chat.seller.token),
    )
    .await
    .expect(200);
}

/// The id of the newest event in the log.
async fn newest_event(app: &TestApp) -> i64 {
    use kernel::bus::entity::event;
    use sea_orm::{EntityTrait, QueryOrder};
    let db = app.db().await;
    let newest = event::Entity::find()
        .order_by_desc(event::Column::Id)
        .one(&db)
        .await
        .expect("the event log")
        .map_or(0, |e| e.id);
    db.close().await.ok();
    newest
}

/// `PUT` (or `DELETE`) of a reaction by `user`; the answer.
async fn react(
    app: &TestApp,
    method: reqwest::Method,
    user: &TestUser,
    chat_id: &str,
    message_id: &str,
    emoji: &str,
) -> marketplace_tests::Resp {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    app.send(
        app.http
            .request(
                method,
                app.url(&format!(
                    "/api/chats/{chat_id}/messages/{message_id}/reactions/{encoded}"
                )),
            )
            .bearer_auth(&user.token),
    )
    .await
}

#[tokio::test]
async fn reactions_are_idempotent_normalized_counted_and_shown_on_messages() {
    let app = TestApp::spawn().await;
    let c = app.chat_with_messages(1).await;
    let m = s(&c.messages[0], "id");
    let put = reqwest::Method::PUT;
    let r = react(&app, put.clone(), &c.buyer, &c.chat_id, &m, "😀")
        .await
        .expect(200);
    assert_eq!(
        r,
        json!({ "messageId": m, "reactions": [{ "emoji": "😀", "count": 1, "me": true }] })
    );
    // The same emoji with a variation selector, twice: still one reaction, no new event.
    app.settled().await;
    let events_before = newest_event(&app).await;
    for variant in ["😀\u{FE0F}", "😀\u{FE0E}", "😀"] {
        let r = react(&app, put.clone(), &c.buyer, &c.chat_id, &m, variant)
            .await
            .expect(200);
        assert_eq!(
            r["reactions"],
            json!([{ "emoji": "😀", "count": 1, "me": true }])
        );
    }
    app.settled().await;
    let events_after = newest_event(&app).await;
    assert_eq!(
        events_before, events_after,
        "an idempotent PUT publishes nothing"
    );
    // ❤ and ❤️ (U+FE0F) are one emoji; the seller's counts with the buyer's.
    react(&app, put.clone(), &c.seller, &c.chat_id, &m, "😀")
        .await
        .expect(200);
    react(&app, put.clone(), &c.seller, &c.chat_id, &m, "❤\u{FE0F}")
        .await
        .expect(200);
    let r = react(&app, put.clone(), &c.buyer, &c.chat_id, &m, "❤")
        .await
        .expect(200);
    assert_eq!(
        r["reactions"],
        json!([{ "emoji": "😀", "count": 2, "me": true }, { "emoji": "❤", "count": 2, "me": true }])
    );
    // NFC: a sequence sent decomposed compares equal to its composed form (a keycap and a
    // flag have no decomposition, so they stay themselves).
    let r = react(
        &app,
        put.clone(),
        &c.buyer,
        &c.chat_id,
        &m,
        "1\u{FE0F}\u{20E3}",
    )
    .await
    .expect(200);
    assert_eq!(r["reactions"][2]["emoji"], "1\u{20E3}");
    // The list shows them with `me` for the caller.
    let page = app
        .get(
            &format!("/api/chats/{}/messages", c.chat_id),
            Some(&c.seller.token),
        )
        .await
        .expect(200);
    assert_eq!(
        page["items"][0]["reactions"],
        json!([
            { "emoji": "😀", "count": 2, "me": true },
            { "emoji": "❤", "count": 2, "me": true },
            { "emoji": "1\u{20E3}", "count": 1, "me": false }
        ])
    );
    // DELETE is idempotent too.
    let del = reqwest::Method::DELETE;
    let r = react(&app, del.clone(), &c.seller, &c.chat_id, &m, "❤️")
        .await
        .expect(200);
    assert_eq!(
        r["reactions"][1],
        json!({ "emoji": "❤", "count": 1, "me": false })
    );
    let r = react(&app, del.clone(), &c.seller, &c.chat_id, &m, "❤")
        .await
        .expect(200);
    assert_eq!(
        r["reactions"][1],
        json!({ "emoji": "❤", "count": 1, "me": false })
    );
    // Not one emoji: 422.
    for bad in ["ab", "😀😀", "a", "%"] {
        let r = react(&app, put.clone(), &c.buyer, &c.chat_id, &m, bad).await;
        assert_eq!(r.status, 422, "{bad:?}");
    }
}

#[tokio::test]
async fn a_message_takes_at_most_20_distinct_emoji() {
    let app = TestApp::spawn().await;
    let c = app.chat_with_messages(1).await;
    let m = s(&c.messages[0], "id");
    let put = reqwest::Method::PUT;
    let emoji: Vec<String> = (0..21u32)
        .map(|i| char::from_u32(0x1F600 + i).expect("emoji").to_string())
        .collect();
    for e in &emoji[..20] {
        react(&app, put.clone(), &c.buyer, &c.chat_id, &m, e)
            .await
            .expect(200);
    }
    let r = react(&app, put.clone(), &c.seller, &c.chat_id, &m, &emoji[20]).await;
    assert_eq!((r.status, r.code()), (409, "too_many_reactions"));
    // One of the 20 may still be added by the other participant.
    let r = react(&app, put.clone(), &c.seller, &c.chat_id, &m, &emoji[0])
        .await
        .expect(200);
    assert_eq!(r["reactions"].as_array().map(Vec::len), Some(20));
    assert_eq!(r["reactions"][0]["count"], 2);
}

#[tokio::test]
async fn reactions_reach_the_chat_room_live_and_strangers_get_404() {
    let app = TestApp::spawn().await;
    let c = app.chat_with_messages(1).await;
    let m = s(&c.messages[0], "id");
    let mut seller_socket = app.socket(&c.seller).await;
    let joined = seller_socket.ack("join-chat-room", json!(c.chat_id)).await;
    assert_eq!(joined["ok"], true, "{joined}");
    react(&app, reqwest::Method::PUT, &c.buyer, &c.chat_id, &m, "👍🏽")
        .await
        .expect(200);
    let added = seller_socket
        .expect("chat:reaction-added", Duration::from_secs(10))
        .await;
    assert_eq!(
        added[0],
        json!({ "chatId": c.chat_id, "messageId": m, "emoji": "👍🏽", "userId": c.buyer.id, "count": 1 })
    );
    assert!(
        added[1]["id"].as_i64().is_some(),
        "durable: carries {{ id, at }}"
    );
    react(
        &app,
        reqwest::Method::DELETE,
        &c.buyer,
        &c.chat_id,
        &m,
        "👍🏽",
    )
    .await
    .expect(200);
    let removed = seller_socket
        .expect("chat:reaction-removed", Duration::from_secs(10))
        .await;
    assert_eq!(removed[0]["count"], 0);
    // No notification for reactions.
    app.settled().await;
    let notes = app
        .get("/api/notifications", Some(&c.seller.token))
        .await
        .expect(200);
    assert!(
        notes["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|n| !n["kind"]
                .as_str()
                .unwrap_or("")
                .starts_with("chat:reaction")),
        "{notes}"
    );
    // A stranger, a message of another chat, an admin.
    let stranger = app.buyer().await;
    let r = react(&app, reqwest::Method::PUT, &stranger, &c.chat_id, &m, "😀").await;
    assert_eq!(r.status, 404);
    let other = app.chat_with_messages(1).await;
    let r = react(
        &app,
        reqwest::Method::PUT,
        &c.buyer,
        &c.chat_id,
        &s(&other.messages[0], "id"),
        "😀",
    )
    .await;
    assert_eq!(r.status, 404);
    let admin = app.admin().await;
    let r = react(&app, reqwest::Method::PUT, &admin, &c.chat_id, &m, "😀").await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn an_unattached_upload_can_be_deleted_by_its_uploader() {
    let app = TestApp::spawn_with(|env| {
        env.insert("RUST_LOG".into(), "error".into());
    })
    .await;
    let user = app.buyer().await;
    let a = app.upload_photo(&user).await;
    let id = s(&a, "id");
    let r = app
        .send(
            app.http
                .delete(app.url(&format!("/api/attachments/{id}")))
                .bearer_auth(&user.token),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(
        app.get(&format!("/api/attachments/{id}"), Some(&user.token))
            .await
            .status,
        404
    );
    assert_eq!(app.fetch_link(&s(&a, "url")).await.0, 404);
}

/// The README's upload benchmark (run by hand: `cargo test -p marketplace-tests --test files
/// bench_ -- --ignored --nocapture`): 100 concurrent 5 MB JPEG uploads to a server in its own
/// process (`MARKETPLACE_BIN`, default `target/debug/marketplace`) on the local store; prints
/// the throughput, the server's peak RSS and the time from one upload to its thumbnail.
#[tokio::test]
#[ignore]
async fn bench_100_concurrent_5mb_jpeg_uploads() {
    use std::time::Instant;
    let bin = std::env::var("MARKETPLACE_BIN")
        .unwrap_or_else(|_| format!("{}/../target/debug/marketplace", env!("CARGO_MANIFEST_DIR")));
    // Noise does not compress: about 5 MB at quality 95.
    let mut seed: u32 = 7;
    let img = image::RgbImage::from_fn(1700, 1250, |_, _| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let b = seed.to_le_bytes();
        image::Rgb([b[1], b[2], b[3]])
    });
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 95,
        ))
        .expect("encode");
    let dir = std::env::temp_dir().join(format!(
        "marketplace-bench-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(&bin)
        .arg("serve")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
        )
        .env("STORAGE_URL", format!("file://{}/uploads", dir.display()))
        .env("JWT_SECRET", marketplace_tests::JWT_SECRET)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start the server binary (build it first)");
    let pid = server.id().expect("pid");
    let app = TestApp::attach(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        Default::default(),
    )
    .await;
    let user = app.buyer().await;
    let peak = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
            / 1024
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .expect("client");
    let upload = |name: String| {
        let (http, base, user, jpeg) = (&http, &base, &user, &jpeg);
        async move {
            let body =
                marketplace_tests::files::multipart_body("file", &name, Some("image/jpeg"), jpeg);
            let res = http
                .post(format!("{base}/api/uploads"))
                .bearer_auth(&user.token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body)
                .send()
                .await
                .expect("upload");
            (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or_default(),
            )
        }
    };
    // One upload on an idle server: the time until its thumbnail is fetched.
    let started = Instant::now();
    let (status, a) = upload("one.jpg".into()).await;
    assert_eq!(status, 201, "{a}");
    let (status, _, _) = app.fetch_link(&s(&a, "thumbnailUrl")).await;
    assert_eq!(status, 200);
    let to_thumbnail = started.elapsed();
    let idle_peak = peak();
    let started = Instant::now();
    let results = futures::future::join_all((0..100).map(|i| upload(format!("p{i}.jpg")))).await;
    let took = started.elapsed();
    assert!(results.iter().all(|(s, _)| *s == 201));
    let mb = jpeg.len() as f64 * 100.0 / 1_048_576.0;
    println!(
        "100 x {:.1} MB JPEG: {:.1} s, {:.1} MB/s, {:.2} uploads/s; server peak RSS {} MiB (after one upload: {} MiB); one upload to its thumbnail: {} ms",
        jpeg.len() as f64 / 1_048_576.0,
        took.as_secs_f64(),
        mb / took.as_secs_f64(),
        100.0 / took.as_secs_f64(),
        peak(),
        idle_peak,
        to_thumbnail.as_millis(),
    );
    let _ = server.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
