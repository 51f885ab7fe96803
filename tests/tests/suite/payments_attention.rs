//! Payments under hostile input and money that needs a person, against the stand-in SHKeeper:
//! absurd amounts in signed callbacks are recorded `rejected` and stop nobody; oversized
//! callbacks are 413 problem documents that store nothing; a refused payout is retried as a
//! new payout paid once; a payment that completed after its request was cancelled is refunded
//! once; a new payout is submitted without waiting for `PAYOUT_POLL_SECS`.

use std::time::Duration;

use marketplace_tests::shkeeper::{
    StandIn, app_with, completed_request, count_events, now_secs, paid_after_cancel, paid_request,
    payment_callback, post_raw, post_signed, sign,
};
use marketplace_tests::story::CompletedRequest;
use marketplace_tests::{TestApp, TestUser, eventually};
use serde_json::{Value, json};

const HOOK: &str = "/api/webhooks/shkeeper";
const PAYOUT_HOOK: &str = "/api/webhooks/shkeeper/payout";
const WAIT: Duration = Duration::from_secs(30);

async fn webhooks(app: &TestApp, admin: &TestUser, status: Option<&str>) -> Vec<Value> {
    let path = match status {
        Some(s) => format!("/api/admin/webhooks?limit=100&status={s}"),
        None => "/api/admin/webhooks?limit=100".to_owned(),
    };
    app.get(&path, Some(&admin.token)).await.expect(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn attention(app: &TestApp, admin: &TestUser) -> Vec<Value> {
    app.get("/api/admin/attention?limit=100", Some(&admin.token))
        .await
        .expect(200)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the payout `id` has `status`, as `token`'s holder sees it.
async fn wait_payout_by_id(app: &TestApp, token: &str, id: &str, status: &str) -> Value {
    eventually(WAIT, || async {
        let p = app
            .get(&format!("/api/payouts/{id}"), Some(token))
            .await
            .expect(200);
        (p["status"] == status).then_some(p)
    })
    .await
    .unwrap_or_else(|| panic!("payout {id} did not reach {status}"))
}

fn is_problem(res: &marketplace_tests::Resp) -> bool {
    res.content_type.starts_with("application/problem+json")
        && res.body["status"].as_u64() == Some(u64::from(res.status))
        && res.body["code"].is_string()
}

#[tokio::test]
async fn a_signed_callback_with_an_absurd_amount_is_rejected_and_payments_and_payouts_go_on() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let accepted = app.accepted_request("100.00").await;
    let (buyer, seller, request_id) = (&accepted.buyer, &accepted.seller, &accepted.request_id);
    let p = app.create_payment(buyer, request_id).await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["cryptoAmount"], "0.00251");

    let beyond_decimal = "9".repeat(40);
    let cases: Vec<(&str, Value, Value)> = vec![
        // Within Decimal's range, but far beyond the invoice: this one used to overflow the
        // payout arithmetic and kill the payouts subscriber.
        (
            "huge",
            json!("79228162514264337593543950335"),
            json!("100.00"),
        ),
        ("beyond any decimal", json!(beyond_decimal), json!("100.00")),
        ("a JSON number far too big", json!(1e30), json!("100.00")),
        ("negative", json!("-0.001"), json!("100.00")),
        ("unparsable", json!("a lot"), json!("100.00")),
        ("11x the invoice", json!("0.02762"), json!("100.00")),
        ("absurd fiat", json!("0.00251"), json!("1000000000")),
    ];
    for (i, (name, crypto, fiat)) in cases.iter().enumerate() {
        let mut body = payment_callback(id, "PAID", "0", "0", &format!("tx-absurd-{i}"));
        body["balance_crypto"] = crypto.clone();
        body["balance_fiat"] = fiat.clone();
        let res = post_signed(&app, HOOK, &body).await;
        assert_eq!(
            res.status, 202,
            "{name}: answered so the provider stops retrying"
        );
        assert_eq!(res.body["outcome"], "rejected", "{name}");
    }

    // No money moved.
    let now = app
        .get(&format!("/api/payments/{id}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(now["status"], "pending");
    assert_eq!(now["paidAmount"]["amount"], "0.00");
    assert_eq!(
        app.request_status(&buyer.token, request_id).await,
        "accepted"
    );
    assert_eq!(count_events(&app, "payment:status-updated").await, 0);

    // Admins see each one with its reason.
    let rejected = webhooks(&app, &admin, Some("rejected")).await;
    assert_eq!(rejected.len(), cases.len());
    assert!(rejected.iter().all(|w| w["outcome"] == "rejected"));
    assert!(
        rejected
            .iter()
            .all(|w| w["detail"].as_str().is_some_and(|d| !d.is_empty())),
        "every rejection says why: {rejected:?}"
    );
    assert!(
        rejected
            .iter()
            .any(|w| w["detail"].as_str().unwrap().contains("10x"))
    );

    // A sane callback for a rejected transaction still applies: nothing was used up.
    let res = post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PAID", "100.00", "0.00251", "tx-absurd-0"),
    )
    .await;
    assert_eq!(res.expect(202)["outcome"], "applied");
    assert_eq!(app.request_status(&buyer.token, request_id).await, "paid");

    // This seller's payout works...
    app.complete(accepted.clone().paid(p.clone())).await;
    let done = app.wait_payout(&seller.token, "completed", WAIT).await;
    assert_eq!(done["amount"], "0.00251");

    // ...and so do the next buyer's payment and the next seller's payout.
    let next = completed_request(&app, "100.00", "0.00251", "tx-next").await;
    let done2 = app.wait_payout(&next.seller.token, "completed", WAIT).await;
    assert_eq!(done2["requestId"], next.request_id.as_str());
    assert_eq!(standin.calls("POST", "/payout").len(), 2);
}

#[tokio::test]
async fn an_oversized_callback_is_413_problem_json_and_stores_nothing() {
    let standin = StandIn::start().await;
    let app = TestApp::spawn_with(|env| {
        standin.env(env);
        env.insert("BODY_LIMIT_BYTES".into(), "8192".into());
    })
    .await;
    let admin = app.admin().await;
    let accepted = app.accepted_request("100.00").await;
    let buyer = &accepted.buyer;
    let p = app.create_payment(buyer, &accepted.request_id).await;
    let id = p["id"].as_str().unwrap();

    let mut big = payment_callback(id, "PAID", "100.00", "0.00251", "tx-big");
    big["padding"] = json!("x".repeat(20_000));
    for path in [HOOK, PAYOUT_HOOK] {
        // Correctly signed, and unsigned: the size is refused before anything else.
        let signed = post_signed(&app, path, &big).await;
        assert_eq!(signed.status, 413, "{path}");
        assert!(is_problem(&signed), "{path}: {signed:?}");
        assert_eq!(signed.code(), "payload_too_large");
        let unsigned = post_raw(&app, path, &big.to_string(), &[]).await;
        assert_eq!(unsigned.status, 413);
        assert!(is_problem(&unsigned));
    }
    assert!(
        webhooks(&app, &admin, None).await.is_empty(),
        "nothing stored"
    );
    let now = app
        .get(&format!("/api/payments/{id}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(now["status"], "pending");

    // Every other refusal of the webhook is a problem document too (the signed non-JSON body:
    // payments.rs).
    let raw = payment_callback(id, "PAID", "100.00", "0.00251", "tx-1").to_string();
    let ts = now_secs();
    let bad_sig = post_raw(
        &app,
        HOOK,
        &raw,
        &[
            ("X-Shkeeper-Timestamp", ts.to_string()),
            (
                "X-Shkeeper-Signature",
                sign("wrong-key", ts, raw.as_bytes()),
            ),
        ],
    )
    .await;
    assert_eq!(bad_sig.status, 401);
    assert!(is_problem(&bad_sig));
    assert_eq!(bad_sig.code(), "invalid_signature");
    let wrong_method = app.get(HOOK, None).await;
    assert_eq!(wrong_method.status, 405);
    assert!(is_problem(&wrong_method));
    // Still nothing on record (a signed non-JSON body is: payments.rs).
    assert!(webhooks(&app, &admin, None).await.is_empty());
}

/// A completed request whose release payout the stand-in refused ("Not enough funds to pay"):
/// the request and the failed payout. The stand-in accepts payouts again afterwards.
async fn failed_payout(app: &TestApp, standin: &StandIn) -> (CompletedRequest, Value) {
    standin.script(|s| s.payout_error = Some("Not enough funds to pay".into()));
    let completed = completed_request(app, "100.00", "0.00251", "tx-paid").await;
    let failed = app
        .wait_payout(&completed.seller.token, "failed", WAIT)
        .await;
    standin.script(|s| s.payout_error = None);
    (completed, failed)
}

#[tokio::test]
async fn a_refused_payout_needs_attention_with_its_reason_and_retry_path() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let (_, failed) = failed_payout(&app, &standin).await;
    let failed_id = failed["id"].as_str().unwrap().to_owned();

    let items = attention(&app, &admin).await;
    let item = items
        .iter()
        .find(|i| i["id"] == failed_id.as_str())
        .unwrap_or_else(|| panic!("the failed payout needs attention: {items:?}"));
    assert_eq!(item["kind"], "payout_failed");
    assert_eq!(item["action"], "retry_payout");
    assert_eq!(
        item["actionPath"],
        format!("/api/admin/payouts/{failed_id}/retry")
    );
    assert_eq!(item["reason"], "Not enough funds to pay");
    assert_eq!(item["payout"]["status"], "failed");
    assert!(item["blockedBy"].is_null());
}

#[tokio::test]
async fn only_admins_see_attention_and_retry_payouts_and_an_unknown_payout_is_404() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let (c, failed) = failed_payout(&app, &standin).await;
    let retry = format!(
        "/api/admin/payouts/{}/retry",
        failed["id"].as_str().unwrap()
    );

    for who in [&c.seller, &c.buyer] {
        let res = app.post(&retry, Some(&who.token), json!({})).await;
        assert_eq!(res.status, 403);
        assert!(is_problem(&res));
    }
    assert_eq!(
        app.get("/api/admin/attention", Some(&c.seller.token))
            .await
            .status,
        403
    );
    let unknown = app
        .post(
            &format!("/api/admin/payouts/{}/retry", uuid::Uuid::now_v7()),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert!(is_problem(&unknown));
    assert_eq!(count_events(&app, "payout:created").await, 1);
}

#[tokio::test]
async fn a_refused_payout_is_retried_as_a_new_payout_that_pays_once() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let (c, failed) = failed_payout(&app, &standin).await;
    let seller = &c.seller;
    let failed_id = failed["id"].as_str().unwrap().to_owned();
    let retry = format!("/api/admin/payouts/{failed_id}/retry");

    // Two admins click at once: one new payout, one refusal.
    let (a, b) = tokio::join!(
        app.post(&retry, Some(&admin.token), json!({})),
        app.post(&retry, Some(&admin.token), json!({})),
    );
    let (created, lost) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_eq!(lost.status, 409, "{lost:?}");
    assert!(is_problem(&lost));
    let created = created.expect(201);
    let new_id = created["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, failed_id);
    assert_eq!(created["kind"], "release");
    assert_eq!(created["paymentId"], c.payment_id.as_str());
    assert_eq!(created["recipientId"], seller.id.as_str());
    assert_eq!(created["amount"], failed["amount"]);

    // A second retry of the same failed payout, at once: a newer payout replaced it.
    let again = app.post(&retry, Some(&admin.token), json!({})).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "payout_superseded");

    let done = wait_payout_by_id(&app, &seller.token, &new_id, "completed").await;
    assert_eq!(done["txHash"], format!("txid-{new_id}"));
    let calls = standin.calls("POST", "/payout");
    let for_new: Vec<_> = calls
        .iter()
        .filter(|c| c.body["external_id"] == new_id.as_str())
        .collect();
    assert_eq!(for_new.len(), 1, "the new payout is sent once");
    assert_eq!(calls.len(), 2, "the refused call and the retry");

    // The failed one stays as history; the completed one cannot be retried.
    let history = app
        .get(&format!("/api/payouts/{failed_id}"), Some(&seller.token))
        .await
        .expect(200);
    assert_eq!(history["status"], "failed");
    let not_failed = app
        .post(
            &format!("/api/admin/payouts/{new_id}/retry"),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(not_failed.status, 409);
    assert_eq!(not_failed.code(), "payout_not_failed");
    assert!(is_problem(&not_failed));

    assert!(
        attention(&app, &admin)
            .await
            .iter()
            .all(|i| i["id"] != failed_id.as_str()),
        "a retried payout needs no more attention"
    );
    assert_eq!(count_events(&app, "payout:created").await, 2);
    assert_eq!(count_events(&app, "payout:failed").await, 1);
    assert_eq!(count_events(&app, "payout:completed").await, 1);
}

#[tokio::test]
async fn a_payment_not_completed_yet_has_nothing_to_refund() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let accepted = app.accepted_request("100.00").await;
    let p = app
        .create_payment(&accepted.buyer, &accepted.request_id)
        .await;
    let refund = format!("/api/admin/payments/{}/refund", p["id"].as_str().unwrap());

    let pending = app.post(&refund, Some(&admin.token), json!({})).await;
    assert_eq!(pending.status, 409);
    assert_eq!(pending.code(), "payment_not_completed");
}

#[tokio::test]
async fn a_payment_completed_after_cancel_needs_attention_until_the_buyer_has_an_address() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let late = paid_after_cancel(&app, "0.0025", "tx-late").await;
    let id = late.payment_id.as_str();

    let now = app
        .get(&format!("/api/payments/{id}"), Some(&late.buyer.token))
        .await
        .expect(200);
    assert_eq!(now["status"], "completed");
    assert_eq!(
        app.request_status(&late.buyer.token, &late.request_id)
            .await,
        "cancelled"
    );

    let items = attention(&app, &admin).await;
    let item = items
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("the held payment needs attention: {items:?}"));
    assert_eq!(item["kind"], "paid_after_cancel");
    assert_eq!(item["action"], "refund_payment");
    assert_eq!(
        item["actionPath"],
        format!("/api/admin/payments/{id}/refund")
    );
    assert_eq!(item["blockedBy"], "no_payout_address");
    assert_eq!(item["payment"]["status"], "completed");
}

#[tokio::test]
async fn only_admins_refund_an_existing_payment_to_a_known_payout_address() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let late = paid_after_cancel(&app, "0.0025", "tx-late").await;
    let refund = format!("/api/admin/payments/{}/refund", late.payment_id);

    for who in [&late.buyer, &late.seller] {
        let res = app.post(&refund, Some(&who.token), json!({})).await;
        assert_eq!(res.status, 403);
        assert!(is_problem(&res));
    }
    let unknown = app
        .post(
            &format!("/api/admin/payments/{}/refund", uuid::Uuid::now_v7()),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    let no_address = app.post(&refund, Some(&admin.token), json!({})).await;
    assert_eq!(no_address.status, 409);
    assert_eq!(no_address.code(), "no_payout_address");
    assert!(is_problem(&no_address));
    assert_eq!(count_events(&app, "payout:created").await, 0);
}

#[tokio::test]
async fn a_paid_request_that_was_not_cancelled_is_not_refunded_here() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let paid = paid_request(&app, "100.00", "0.00251", "tx-other").await;
    let not_cancelled = app
        .post(
            &format!("/api/admin/payments/{}/refund", paid.payment_id),
            Some(&admin.token),
            json!({}),
        )
        .await;
    assert_eq!(not_cancelled.status, 409);
    assert_eq!(not_cancelled.code(), "request_not_cancelled");
}

#[tokio::test]
async fn a_payment_completed_after_cancel_is_refunded_to_the_buyer_once() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let late = paid_after_cancel(&app, "0.0025", "tx-late").await;
    let (buyer, id) = (&late.buyer, late.payment_id.as_str());
    let refund = format!("/api/admin/payments/{id}/refund");

    app.patch(
        "/api/users/me",
        Some(&buyer.token),
        json!({ "payoutAddress": "bc1qbuyerrefund" }),
    )
    .await
    .expect(200);
    let (a, b) = tokio::join!(
        app.post(&refund, Some(&admin.token), json!({})),
        app.post(&refund, Some(&admin.token), json!({})),
    );
    let (started, lost) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_eq!(lost.status, 409, "{lost:?}");
    assert_eq!(lost.code(), "refund_exists");
    let started = started.expect(201);
    let refund_id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["kind"], "refund");
    assert_eq!(started["recipientId"], buyer.id.as_str());
    assert_eq!(started["destination"], "bc1qbuyerrefund");
    assert_eq!(started["amount"], "0.0025");
    assert_eq!(started["paymentId"], id);

    let twice = app.post(&refund, Some(&admin.token), json!({})).await;
    assert_eq!(twice.status, 409);
    assert_eq!(twice.code(), "refund_exists");

    wait_payout_by_id(&app, &buyer.token, &refund_id, "completed").await;
    let refunded = eventually(WAIT, || async {
        let p = app
            .get(&format!("/api/payments/{id}"), Some(&buyer.token))
            .await
            .expect(200);
        (p["status"] == "refunded").then_some(p)
    })
    .await;
    assert!(refunded.is_some(), "the payment becomes refunded");
    let after = app.post(&refund, Some(&admin.token), json!({})).await;
    assert_eq!(after.status, 409);

    let calls: Vec<_> = standin
        .calls("POST", "/payout")
        .into_iter()
        .filter(|c| c.body["external_id"] == refund_id.as_str())
        .collect();
    assert_eq!(calls.len(), 1, "the buyer is paid once");
    assert_eq!(calls[0].body["destination"], "bc1qbuyerrefund");
    assert_eq!(calls[0].body["amount"], "0.0025");
    assert!(attention(&app, &admin).await.iter().all(|i| i["id"] != id));
}

#[tokio::test]
async fn a_new_payout_is_submitted_without_waiting_for_the_poll_interval() {
    let standin = StandIn::start().await;
    let app = TestApp::spawn_with(|env| {
        standin.env(env);
        env.insert("PAYOUT_POLL_SECS".into(), "3600".into());
    })
    .await;
    // The poller's first pass runs at start-up; after it, only a wake-up can submit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seller = completed_request(&app, "100.00", "0.00251", "tx-wake")
        .await
        .seller;
    let submitted = eventually(WAIT, || async {
        let calls = standin.calls("POST", "/payout");
        (!calls.is_empty()).then_some(calls)
    })
    .await
    .expect("the payout was submitted long before the next hourly poll");
    assert_eq!(submitted.len(), 1);
    // Submitted (and, in the same pass, its task polled: the stand-in answers at once).
    let payout = eventually(WAIT, || async {
        app.latest_payout(&seller.token)
            .await
            .filter(|p| p["status"] == "processing" || p["status"] == "completed")
    })
    .await
    .expect("the payout left pending");
    assert_eq!(submitted[0].body["external_id"], payout["id"]);
}

#[tokio::test]
async fn the_openapi_document_describes_every_answer_of_these_routes() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.expect(200);
    let cases: [(&str, &str, &[&str]); 5] = [
        ("/api/admin/attention", "get", &["200", "401", "403", "422"]),
        (
            "/api/admin/payouts/{id}/retry",
            "post",
            &["201", "401", "403", "404", "409"],
        ),
        (
            "/api/admin/payments/{id}/refund",
            "post",
            &["201", "401", "403", "404", "409"],
        ),
        (
            "/api/webhooks/shkeeper",
            "post",
            &["202", "400", "401", "413"],
        ),
        (
            "/api/webhooks/shkeeper/payout",
            "post",
            &["202", "400", "401", "413"],
        ),
    ];
    for (path, method, statuses) in cases {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        for status in statuses {
            let res = &op["responses"][*status];
            assert!(res.is_object(), "{method} {path} documents {status}");
            if status.starts_with('4') {
                assert!(
                    res["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status} is a problem document: {res}"
                );
            }
        }
    }
    let why = doc["paths"]["/api/webhooks/shkeeper"]["post"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("rejected") && why.contains("202"),
        "the description says why an absurd amount is answered 202: {why}"
    );
}

/// Issue 25, finding 6: a signed `PAID` for 0.01 of a 70.00 USD invoice, or one in EUR, does
/// not complete the payment: the first counts as a partial payment, the second moves nothing;
/// both are listed for admins as callbacks that claimed more than they paid, the request is
/// not `paid`, and the seller can never be paid out for it. A real `PAID` then completes it.
#[tokio::test]
async fn an_underpaid_or_other_currency_paid_never_completes_a_payment() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let admin = app.admin().await;
    let accepted = app.accepted_request("70.00").await;
    let (buyer, seller, request_id) = (&accepted.buyer, &accepted.seller, &accepted.request_id);
    let p = app.create_payment(buyer, request_id).await;
    let id = p["id"].as_str().unwrap();
    let crypto = p["cryptoAmount"].as_str().unwrap().to_owned();

    let short = post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PAID", "0.01", "0.0000001", "tx-short"),
    )
    .await
    .expect(202);
    assert_eq!(short["outcome"], "applied");
    let mut euros = payment_callback(id, "PAID", "70.00", &crypto, "tx-euros");
    euros["fiat"] = json!("EUR");
    assert_eq!(
        post_signed(&app, HOOK, &euros).await.expect(202)["outcome"],
        "rejected"
    );
    let mut eth = payment_callback(id, "OVERPAID", "90.00", &crypto, "tx-eth");
    eth["crypto"] = json!("ETH");
    assert_eq!(
        post_signed(&app, HOOK, &eth).await.expect(202)["outcome"],
        "rejected"
    );
    // Just inside the default 0.5 % tolerance is not the point here; just outside it is short.
    let almost = post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PAID", "69.60", &crypto, "tx-almost"),
    )
    .await
    .expect(202);
    assert_eq!(almost["outcome"], "applied");

    let now = app
        .get(&format!("/api/payments/{id}"), Some(&buyer.token))
        .await
        .expect(200);
    assert_eq!(now["status"], "partially_paid", "{now}");
    assert_eq!(now["paidAmount"]["amount"], "69.60");
    assert_eq!(
        app.request_status(&buyer.token, request_id).await,
        "accepted"
    );
    assert_eq!(count_events(&app, "payment:completed").await, 0);
    // The buyer cannot complete a request that was never paid, so no payout can start.
    let complete = app
        .post(
            &format!("/api/requests/{request_id}/complete"),
            Some(&buyer.token),
            json!({}),
        )
        .await;
    assert_eq!(complete.status, 409, "{}", complete.body);
    assert!(app.latest_payout(&seller.token).await.is_none());

    let items = attention(&app, &admin).await;
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "underpaid_callback").count(),
        2,
        "{items:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "other_currency_callback")
            .count(),
        2,
        "{items:?}"
    );
    for item in &items {
        assert_eq!(item["requestId"], request_id.as_str());
        assert_eq!(item["payment"]["id"], id);
        assert!(
            item["action"].is_null() && item["actionPath"].is_null(),
            "{item}"
        );
        assert!(
            item["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{item}"
        );
    }
    assert!(
        items
            .iter()
            .any(|i| i["reason"].as_str().unwrap().contains("EUR")),
        "the reason names the other currency: {items:?}"
    );

    // The provider's real `PAID` completes it; the claims leave the list.
    post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PAID", "70.00", &crypto, "tx-real"),
    )
    .await
    .expect(202);
    assert_eq!(app.request_status(&buyer.token, request_id).await, "paid");
    assert!(
        attention(&app, &admin)
            .await
            .iter()
            .all(|i| i["payment"]["id"] != id),
        "a completed payment needs no attention"
    );
}

#[tokio::test]
async fn a_paid_within_the_underpaid_tolerance_completes_the_payment() {
    let standin = StandIn::start().await;
    let app = app_with(&standin).await;
    let accepted = app.accepted_request("70.00").await;
    let p = app
        .create_payment(&accepted.buyer, &accepted.request_id)
        .await;
    let id = p["id"].as_str().unwrap();
    let crypto = p["cryptoAmount"].as_str().unwrap().to_owned();
    // 0.5 % of 70.00 is 0.35: 69.65 is covered.
    post_signed(
        &app,
        HOOK,
        &payment_callback(id, "PAID", "69.65", &crypto, "tx-fee"),
    )
    .await
    .expect(202);
    assert_eq!(
        app.request_status(&accepted.buyer.token, &accepted.request_id)
            .await,
        "paid"
    );
}
