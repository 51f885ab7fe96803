//! The marketplace story as typed steps, for tests to start from the state they are about.
//!
//! Each helper drives the real API over HTTP (nothing is written to the database behind the
//! app's back) and answers a struct with the users and ids of the state it reached, never a
//! tuple or raw JSON. The users come first, one of each role: `app.buyer()`, `app.seller()`
//! (with a payout address, so it can offer), `app.register("seller")` (without one) and
//! `app.admin()` (the bootstrapped admin), all in `lib.rs`. Then the story, one step after
//! the other:
//!
//! [`OpenRequest`] → [`OfferedRequest`] (also [`RequestWithOffers`], [`Chat`],
//! [`ChatWithMessages`]) →
//! [`AcceptedRequest`] → [`PaidRequest`] (→ [`DeliveredRequest`]) → [`CompletedRequest`], or
//! from the paid request [`OpenDispute`] → [`ResolvedDispute`]; a payment that arrived after
//! its request was cancelled is [`PaidAfterCancel`].
//!
//! Every step has a one-call constructor from nothing (`app.paid_request("100.00")`) and a
//! step from the state before it (`app.pay_in_sandbox(accepted)`), so a test can act between
//! two steps. Payments here go through the sandbox provider (the default); with the stand-in
//! SHKeeper, [`crate::shkeeper::pay_by_callback`] and its friends take the signed-callback way.
//!
//! Each helper's doc says the state it leaves and the durable events it caused; asynchronous
//! effects of those events (notifications, payouts) may still be on their way when it returns.

use serde_json::{Value, json};

use crate::{TestApp, TestUser};

/// A buyer's request with no offers.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    pub buyer: TestUser,
    pub request_id: String,
}

/// A buyer's open request with one seller's pending offer of `price` USD.
#[derive(Debug, Clone)]
pub struct OfferedRequest {
    pub buyer: TestUser,
    /// Has a payout address.
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    /// The offer's amount in USD, as sent (`"100.00"`).
    pub price: String,
}

/// A request whose buyer accepted the seller's offer; not paid yet.
#[derive(Debug, Clone)]
pub struct AcceptedRequest {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
}

/// An accepted request paid in full: payment `completed`, request `paid`.
#[derive(Debug, Clone)]
pub struct PaidRequest {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
    pub payment_id: String,
    /// The payment as `POST /api/payments` created it (the invoice: `cryptoAmount`,
    /// `payAddress`, ...; its `status` is still `pending` there).
    pub payment: Value,
}

/// A paid request its accepted seller marked delivered: request `delivered`, its automatic
/// completion scheduled at `autoCompleteAt`.
#[derive(Debug, Clone)]
pub struct DeliveredRequest {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
    pub payment_id: String,
    pub payment: Value,
    /// The 200 `PurchaseRequest` of `POST /api/requests/{id}/deliver` (`deliveredAt`,
    /// `autoCompleteAt`).
    pub request: Value,
}

impl DeliveredRequest {
    /// The same request as a [`PaidRequest`], for the steps that start from one (completing,
    /// disputing: both accept a delivered request too).
    pub fn as_paid(&self) -> PaidRequest {
        PaidRequest {
            buyer: self.buyer.clone(),
            seller: self.seller.clone(),
            request_id: self.request_id.clone(),
            offer_id: self.offer_id.clone(),
            price: self.price.clone(),
            payment_id: self.payment_id.clone(),
            payment: self.payment.clone(),
        }
    }
}

/// A paid request whose buyer confirmed delivery: request `completed`, the release payout
/// to the seller started.
#[derive(Debug, Clone)]
pub struct CompletedRequest {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
    pub payment_id: String,
    /// As in [`PaidRequest::payment`].
    pub payment: Value,
}

/// A buyer's open request with pending offers from several new sellers, in the order made.
#[derive(Debug, Clone)]
pub struct RequestWithOffers {
    pub buyer: TestUser,
    pub request_id: String,
    /// The sellers, one per offer (each has a payout address).
    pub sellers: Vec<TestUser>,
    /// The 201 `SellerOffer` bodies, `offers[i]` by `sellers[i]`.
    pub offers: Vec<Value>,
}

/// An accepted request whose buyer created a payment and then cancelled the request, after
/// which the money arrived anyway: payment `completed`, request `cancelled` ("money that needs
/// a person": `GET /api/admin/attention` lists it). The buyer has no payout address.
#[derive(Debug, Clone)]
pub struct PaidAfterCancel {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
    pub payment_id: String,
}

/// Which party of a request acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Buyer,
    Seller,
}

/// A paid request with an open dispute: request `disputed`.
#[derive(Debug, Clone)]
pub struct OpenDispute {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
    pub payment_id: String,
    pub payment: Value,
    pub dispute_id: String,
    /// Who opened it.
    pub opened_by: Party,
    /// The 201 body of `POST /api/requests/{id}/disputes`.
    pub dispute: Value,
}

/// A dispute an admin resolved: request `completed` or `refunded`, its payout started.
#[derive(Debug, Clone)]
pub struct ResolvedDispute {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub admin: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub price: String,
    pub payment_id: String,
    pub payment: Value,
    pub dispute_id: String,
    pub opened_by: Party,
    /// `release_to_seller` or `refund_buyer`.
    pub resolution: String,
    /// The 200 body of `POST /api/disputes/{id}/resolve`.
    pub dispute: Value,
}

/// The chat a seller's offer opened with the request's buyer.
#[derive(Debug, Clone)]
pub struct Chat {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub chat_id: String,
}

/// A chat with messages the two participants sent in turn, the buyer first.
#[derive(Debug, Clone)]
pub struct ChatWithMessages {
    pub buyer: TestUser,
    pub seller: TestUser,
    pub request_id: String,
    pub offer_id: String,
    pub chat_id: String,
    /// The 201 bodies of the messages, oldest first; message `i` (from 0) says
    /// `"message {i}"` and is the buyer's when `i` is even.
    pub messages: Vec<Value>,
}

impl AcceptedRequest {
    /// This request once `payment` (the 201 body of `POST /api/payments`) completed.
    pub fn paid(self, payment: Value) -> PaidRequest {
        PaidRequest {
            payment_id: id_of(&payment, "the payment"),
            buyer: self.buyer,
            seller: self.seller,
            request_id: self.request_id,
            offer_id: self.offer_id,
            price: self.price,
            payment,
        }
    }

    /// This request once cancelled and then paid by the payment `payment_id`.
    pub fn paid_after_cancel(self, payment_id: String) -> PaidAfterCancel {
        PaidAfterCancel {
            buyer: self.buyer,
            seller: self.seller,
            request_id: self.request_id,
            offer_id: self.offer_id,
            price: self.price,
            payment_id,
        }
    }
}

impl OpenDispute {
    /// The user who opened the dispute.
    pub fn opener(&self) -> &TestUser {
        match self.opened_by {
            Party::Buyer => &self.buyer,
            Party::Seller => &self.seller,
        }
    }
    /// The other party (the one `dispute:opened` notifies).
    pub fn other_party(&self) -> &TestUser {
        match self.opened_by {
            Party::Buyer => &self.seller,
            Party::Seller => &self.buyer,
        }
    }
}

fn id_of(body: &Value, what: &str) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what} has no id: {body}"))
        .to_owned()
}

impl TestApp {
    /// A new buyer with a new request. Leaves: request `open`, no offers.
    /// Events: `request:created`.
    pub async fn open_request(&self) -> OpenRequest {
        let buyer = self.buyer().await;
        let request_id = self.create_request(&buyer).await;
        OpenRequest { buyer, request_id }
    }

    /// A new seller (with a payout address) offers `price` USD on `open`. Leaves: offer
    /// `pending`, the chat of that buyer and seller opened. Events: `request:offer-received`
    /// (the buyer is notified).
    pub async fn offer_on(&self, open: OpenRequest, price: &str) -> OfferedRequest {
        let seller = self.seller().await;
        let offer_id = self.make_offer(&seller, &open.request_id, price).await;
        OfferedRequest {
            buyer: open.buyer,
            seller,
            request_id: open.request_id,
            offer_id,
            price: price.to_owned(),
        }
    }

    /// A new buyer's open request with one offer per price, each from a new seller, made in
    /// this order. Events: `request:created`, one `request:offer-received` per offer.
    pub async fn request_with_offers(&self, prices: &[&str]) -> RequestWithOffers {
        let open = self.open_request().await;
        let mut sellers = Vec::with_capacity(prices.len());
        let mut offers = Vec::with_capacity(prices.len());
        for price in prices {
            let seller = self.seller().await;
            offers.push(self.post_offer(&seller, &open.request_id, price).await);
            sellers.push(seller);
        }
        RequestWithOffers {
            buyer: open.buyer,
            request_id: open.request_id,
            sellers,
            offers,
        }
    }

    /// [`TestApp::open_request`] then [`TestApp::offer_on`].
    pub async fn offered_request(&self, price: &str) -> OfferedRequest {
        let open = self.open_request().await;
        self.offer_on(open, price).await
    }

    /// The buyer accepts the offer. Leaves: offer `accepted`, request `accepted`.
    /// Events: `offer:accepted`, `request:status-updated`.
    pub async fn accept(&self, offered: OfferedRequest) -> AcceptedRequest {
        self.post(
            &format!("/api/offers/{}/accept", offered.offer_id),
            Some(&offered.buyer.token),
            json!({}),
        )
        .await
        .expect(200);
        AcceptedRequest {
            buyer: offered.buyer,
            seller: offered.seller,
            request_id: offered.request_id,
            offer_id: offered.offer_id,
            price: offered.price,
        }
    }

    /// A new buyer's request with a new seller's offer of `price` USD, accepted
    /// ([`TestApp::offered_request`] then [`TestApp::accept`]).
    pub async fn accepted_request(&self, price: &str) -> AcceptedRequest {
        let offered = self.offered_request(price).await;
        self.accept(offered).await
    }

    /// The buyer pays in BTC and the sandbox simulates SHKeeper's signed `PAID` callback
    /// through the real webhook (the app must use the sandbox provider, the default).
    /// Leaves: payment `completed`, request `paid`, one `applied` webhook on record.
    /// Events: `payment:created`, `payment:status-updated`, `request:status-updated`,
    /// `payment:completed` (buyer and seller are notified).
    pub async fn pay_in_sandbox(&self, accepted: AcceptedRequest) -> PaidRequest {
        let payment = self
            .create_payment(&accepted.buyer, &accepted.request_id)
            .await;
        self.simulate_paid(&accepted.buyer, &id_of(&payment, "the payment"))
            .await;
        accepted.paid(payment)
    }

    /// The sandbox simulates SHKeeper's `PAID` callback for the payment; asserts it completed.
    async fn simulate_paid(&self, buyer: &TestUser, payment_id: &str) {
        let paid = self
            .post(
                &format!("/api/sandbox/payments/{payment_id}/simulate"),
                Some(&buyer.token),
                json!({ "status": "PAID" }),
            )
            .await
            .expect(200);
        assert_eq!(paid["status"], "completed", "{paid}");
    }

    /// [`TestApp::accepted_request`] then [`TestApp::pay_in_sandbox`].
    pub async fn paid_request(&self, price: &str) -> PaidRequest {
        let accepted = self.accepted_request(price).await;
        self.pay_in_sandbox(accepted).await
    }

    /// The buyer cancels the request (`open` or `accepted`). Events: `request:status-updated`.
    pub async fn cancel_request(&self, buyer: &TestUser, request_id: &str) {
        self.post(
            &format!("/api/requests/{request_id}/cancel"),
            Some(&buyer.token),
            json!({}),
        )
        .await
        .expect(200);
    }

    /// An accepted request of `price` USD: the buyer creates a payment, cancels the request,
    /// then the sandbox simulates the `PAID` callback. Leaves [`PaidAfterCancel`].
    /// Events: `payment:created`, `request:status-updated` (cancelled),
    /// `payment:status-updated`, `payment:completed`.
    pub async fn paid_after_cancel(&self, price: &str) -> PaidAfterCancel {
        let a = self.accepted_request(price).await;
        let payment = self.create_payment(&a.buyer, &a.request_id).await;
        let payment_id = id_of(&payment, "the payment");
        self.cancel_request(&a.buyer, &a.request_id).await;
        self.simulate_paid(&a.buyer, &payment_id).await;
        a.paid_after_cancel(payment_id)
    }

    /// `POST /api/payments` for the request in BTC as `buyer`; the 201 body (payment
    /// `pending`). Events: `payment:created`.
    pub async fn create_payment(&self, buyer: &TestUser, request_id: &str) -> Value {
        self.post(
            "/api/payments",
            Some(&buyer.token),
            json!({ "requestId": request_id, "crypto": "BTC" }),
        )
        .await
        .expect(201)
    }

    /// The accepted seller marks the paid request delivered. Leaves: request `delivered`, its
    /// automatic completion due `AUTO_COMPLETE_AFTER_SECS` later. Events:
    /// `request:status-updated`.
    pub async fn deliver(&self, paid: PaidRequest) -> DeliveredRequest {
        let request = self
            .post(
                &format!("/api/requests/{}/deliver", paid.request_id),
                Some(&paid.seller.token),
                json!({}),
            )
            .await
            .expect(200);
        DeliveredRequest {
            buyer: paid.buyer,
            seller: paid.seller,
            request_id: paid.request_id,
            offer_id: paid.offer_id,
            price: paid.price,
            payment_id: paid.payment_id,
            payment: paid.payment,
            request,
        }
    }

    /// [`TestApp::paid_request`] then [`TestApp::deliver`].
    pub async fn delivered_request(&self, price: &str) -> DeliveredRequest {
        let paid = self.paid_request(price).await;
        self.deliver(paid).await
    }

    /// The buyer confirms delivery (of a paid or a delivered request). Leaves: request
    /// `completed`, a release payout to the seller started (with the sandbox it completes on
    /// its first poll).
    /// Events: `request:status-updated`, then `payout:created` and later `payout:completed`.
    pub async fn complete(&self, paid: PaidRequest) -> CompletedRequest {
        self.post(
            &format!("/api/requests/{}/complete", paid.request_id),
            Some(&paid.buyer.token),
            json!({}),
        )
        .await
        .expect(200);
        CompletedRequest {
            buyer: paid.buyer,
            seller: paid.seller,
            request_id: paid.request_id,
            offer_id: paid.offer_id,
            price: paid.price,
            payment_id: paid.payment_id,
            payment: paid.payment,
        }
    }

    /// [`TestApp::paid_request`] then [`TestApp::complete`].
    pub async fn completed_request(&self, price: &str) -> CompletedRequest {
        let paid = self.paid_request(price).await;
        self.complete(paid).await
    }

    /// `by` opens a dispute on the paid request with this reason. Leaves: dispute `open`,
    /// request `disputed`. Events: `dispute:opened` (the other party is notified).
    pub async fn dispute(&self, paid: PaidRequest, by: Party, reason: &str) -> OpenDispute {
        let opener = match by {
            Party::Buyer => &paid.buyer,
            Party::Seller => &paid.seller,
        };
        let dispute = self
            .post(
                &format!("/api/requests/{}/disputes", paid.request_id),
                Some(&opener.token),
                json!({ "reason": reason }),
            )
            .await
            .expect(201);
        OpenDispute {
            dispute_id: id_of(&dispute, "the dispute"),
            buyer: paid.buyer,
            seller: paid.seller,
            request_id: paid.request_id,
            offer_id: paid.offer_id,
            price: paid.price,
            payment_id: paid.payment_id,
            payment: paid.payment,
            opened_by: by,
            dispute,
        }
    }

    /// A sandbox-paid request of `price` USD whose buyer opened a dispute ("The bike never
    /// arrived."): [`TestApp::paid_request`] then [`TestApp::dispute`].
    pub async fn open_dispute(&self, price: &str) -> OpenDispute {
        let paid = self.paid_request(price).await;
        self.dispute(paid, Party::Buyer, "The bike never arrived.")
            .await
    }

    /// The admin resolves the dispute (`release_to_seller` or `refund_buyer`; a refund needs
    /// the buyer's payout address). Leaves: dispute `resolved`, request `completed` or
    /// `refunded`, the payout to the seller or the refund to the buyer started.
    /// Events: `dispute:resolved`, `request:status-updated`, then `payout:created`.
    pub async fn resolve(
        &self,
        open: OpenDispute,
        resolution: &str,
        note: &str,
    ) -> ResolvedDispute {
        let admin = self.admin().await;
        let dispute = self
            .post(
                &format!("/api/disputes/{}/resolve", open.dispute_id),
                Some(&admin.token),
                json!({ "resolution": resolution, "note": note }),
            )
            .await
            .expect(200);
        ResolvedDispute {
            buyer: open.buyer,
            seller: open.seller,
            admin,
            request_id: open.request_id,
            offer_id: open.offer_id,
            price: open.price,
            payment_id: open.payment_id,
            payment: open.payment,
            dispute_id: open.dispute_id,
            opened_by: open.opened_by,
            resolution: resolution.to_owned(),
            dispute,
        }
    }

    /// A buyer's dispute resolved to the seller ([`TestApp::open_dispute`] then
    /// [`TestApp::resolve`] with `release_to_seller`).
    pub async fn resolved_dispute(&self, price: &str) -> ResolvedDispute {
        let open = self.open_dispute(price).await;
        self.resolve(
            open,
            "release_to_seller",
            "Delivery confirmed by the carrier.",
        )
        .await
    }

    /// The id of the chat `seller`'s offer on the request opened, from the seller's chat
    /// list. Causes nothing.
    pub async fn chat_id(&self, seller: &TestUser, request_id: &str) -> String {
        let page = self
            .get("/api/chats?limit=100", Some(&seller.token))
            .await
            .expect(200);
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|c| c["requestId"] == request_id)
            .and_then(|c| c["id"].as_str())
            .expect("the offer opened a chat")
            .to_owned()
    }

    /// The chat the offer opened ([`TestApp::chat_id`]). Causes nothing.
    pub async fn chat_of(&self, offered: OfferedRequest) -> Chat {
        let chat_id = self.chat_id(&offered.seller, &offered.request_id).await;
        Chat {
            buyer: offered.buyer,
            seller: offered.seller,
            request_id: offered.request_id,
            offer_id: offered.offer_id,
            chat_id,
        }
    }

    /// A new buyer and seller with the chat the seller's offer (120.00 USD) opened, no
    /// messages yet ([`TestApp::offered_request`] then [`TestApp::chat_of`]).
    pub async fn chat(&self) -> Chat {
        let offered = self.offered_request("120.00").await;
        self.chat_of(offered).await
    }

    /// `user` posts `content` to the chat over REST; the 201 `Message`.
    /// Events: `chat:new-message` (the other participant is notified).
    pub async fn send_message(&self, user: &TestUser, chat_id: &str, content: &str) -> Value {
        self.post(
            &format!("/api/chats/{chat_id}/messages"),
            Some(&user.token),
            json!({ "content": content }),
        )
        .await
        .expect(201)
    }

    /// A new [`Chat`] with `n` messages, buyer and seller in turn (buyer first), none read.
    /// Events: `n` × `chat:new-message`.
    pub async fn chat_with_messages(&self, n: usize) -> ChatWithMessages {
        let chat = self.chat().await;
        let mut messages = Vec::with_capacity(n);
        for i in 0..n {
            let from = if i % 2 == 0 {
                &chat.buyer
            } else {
                &chat.seller
            };
            messages.push(
                self.send_message(from, &chat.chat_id, &format!("message {i}"))
                    .await,
            );
        }
        ChatWithMessages {
            buyer: chat.buyer,
            seller: chat.seller,
            request_id: chat.request_id,
            offer_id: chat.offer_id,
            chat_id: chat.chat_id,
            messages,
        }
    }
}
