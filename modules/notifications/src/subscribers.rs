//! What the notifications module reacts to: catalog events that concern a user become
//! persisted notifications for the people they concern, never for the actor who caused them.

use std::sync::Arc;

use catalog::contract::{Money, Resolution};
use catalog::events::*;
use kernel::{AppState, EventBus, Result, StoredEvent, Subscriber};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::service;

/// The durable cursor name of this subscriber. Never rename it.
pub const SUBSCRIBER: &str = "notifications";

/// Every notification `kind`: the events [`drafts`] makes notifications from, in catalog
/// order, which are also the events this module's subscriber declares. Users mute kinds from this list (`PATCH /api/users/me/notification-settings`);
/// adding an arm to [`drafts`] means adding its event here.
pub const KINDS: [EventName; 9] = [
    EventName::RequestOfferReceived,
    EventName::OfferNegotiationUpdate,
    EventName::OfferAccepted,
    EventName::PaymentCompleted,
    EventName::PayoutCompleted,
    EventName::ChatNewMessage,
    EventName::ReviewPublished,
    EventName::DisputeOpened,
    EventName::DisputeResolved,
];

/// The longest chat or negotiation text quoted in a notification body.
const PREVIEW_CHARS: usize = 140;

/// One notification to make for one recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub recipient_id: Uuid,
    pub title: String,
    pub body: String,
    /// The ids a UI links to.
    pub data: Value,
}

/// The bus subscriber that turns events into notifications.
pub fn subscriber(state: &AppState) -> Arc<dyn Subscriber> {
    let bus = state.bus.clone();
    kernel::subscriber(SUBSCRIBER, &KINDS, move |event| {
        let bus = bus.clone();
        async move { handle(&bus, &event).await }
    })
}

async fn handle(bus: &EventBus, event: &StoredEvent) -> Result<()> {
    let drafts = drafts(event);
    if !drafts.is_empty() {
        service::record(bus, event.id, event.name.as_str(), drafts).await?;
    }
    Ok(())
}

/// The notifications `event` makes: who gets one, with which words and links. Empty for
/// events that notify nobody. Pure, so the table below is checked by unit tests.
pub fn drafts(event: &StoredEvent) -> Vec<Draft> {
    let audience = &event.audience;
    let (recipients, title, body, data): (Vec<Option<Uuid>>, &str, String, Value) = match event.name
    {
        EventName::RequestOfferReceived => {
            let Some(e) = decoded::<RequestOfferReceived>(event) else {
                return Vec::new();
            };
            (
                vec![audience.buyer_id],
                "New offer on your request",
                format!("A seller offered {}.", money(&e.offer.price)),
                json!({ "requestId": e.request_id, "offerId": e.offer.id }),
            )
        }
        EventName::OfferNegotiationUpdate => {
            let Some(e) = decoded::<OfferNegotiationUpdate>(event) else {
                return Vec::new();
            };
            let body = match &e.message.price {
                Some(price) => format!(
                    "New price {}: {}",
                    money(price),
                    preview(&e.message.message)
                ),
                None => preview(&e.message.message),
            };
            (
                vec![audience.buyer_id, audience.seller_id],
                "New message in an offer negotiation",
                body,
                json!({ "requestId": e.request_id, "offerId": e.offer_id, "offerMessageId": e.message.id }),
            )
        }
        EventName::OfferAccepted => {
            let Some(e) = decoded::<OfferAccepted>(event) else {
                return Vec::new();
            };
            (
                vec![audience.seller_id],
                "Your offer was accepted",
                "The buyer accepted your offer; payment comes next.".to_owned(),
                json!({ "requestId": e.request_id, "offerId": e.offer_id }),
            )
        }
        EventName::PaymentCompleted => {
            let Some(e) = decoded::<PaymentCompleted>(event) else {
                return Vec::new();
            };
            (
                vec![audience.buyer_id, audience.seller_id],
                "Payment completed",
                "The payment for the request has been received in full.".to_owned(),
                json!({ "requestId": e.request_id, "paymentId": e.payment_id }),
            )
        }
        EventName::PayoutCompleted => {
            let Some(e) = decoded::<PayoutCompleted>(event) else {
                return Vec::new();
            };
            (
                vec![audience.recipient_id],
                "Payout sent",
                format!("Your payout was sent (transaction {}).", e.tx_hash),
                json!({ "requestId": audience.request_id, "payoutId": e.payout_id, "txHash": e.tx_hash }),
            )
        }
        EventName::ReviewPublished => {
            let Some(ReviewPublished(review)) = decoded::<ReviewPublished>(event) else {
                return Vec::new();
            };
            let stars = format!("Rated {} out of 5", review.rating);
            (
                vec![audience.subject_id],
                "You have a new review",
                match review.comment.as_deref().map(str::trim) {
                    Some(comment) if !comment.is_empty() => {
                        format!("{stars}: {}", preview(comment))
                    }
                    _ => format!("{stars}."),
                },
                json!({ "requestId": review.request_id, "reviewId": review.id }),
            )
        }
        EventName::DisputeOpened => {
            let Some(e) = decoded::<DisputeOpened>(event) else {
                return Vec::new();
            };
            (
                vec![audience.buyer_id, audience.seller_id],
                "A dispute was opened",
                format!("Reason: {}", preview(&e.dispute.reason)),
                json!({ "requestId": e.dispute.request_id, "disputeId": e.dispute.id }),
            )
        }
        EventName::DisputeResolved => {
            let Some(e) = decoded::<DisputeResolved>(event) else {
                return Vec::new();
            };
            let body = match e.resolution {
                Resolution::ReleaseToSeller => {
                    "The dispute was resolved: the payment is released to the seller."
                }
                Resolution::RefundBuyer => "The dispute was resolved: the buyer is refunded.",
            };
            (
                vec![audience.buyer_id, audience.seller_id],
                "Dispute resolved",
                body.to_owned(),
                json!({ "requestId": audience.request_id, "disputeId": e.dispute_id, "resolution": e.resolution }),
            )
        }
        EventName::ChatNewMessage => {
            let Some(e) = decoded::<ChatNewMessage>(event) else {
                return Vec::new();
            };
            (
                vec![audience.other_participant_id],
                "New chat message",
                if e.message.content.is_empty() && !e.message.attachments.is_empty() {
                    match e.message.attachments.len() {
                        1 => "Sent a file".to_owned(),
                        n => format!("Sent {n} files"),
                    }
                } else {
                    preview(&e.message.content)
                },
                json!({ "requestId": audience.request_id, "chatId": e.message.chat_id, "messageId": e.message.id }),
            )
        }
        _ => return Vec::new(),
    };
    let mut seen: Vec<Uuid> = Vec::new();
    recipients
        .into_iter()
        .flatten()
        .filter(|r| Some(*r) != audience.actor_id && !r.is_nil())
        .filter(|r| {
            let fresh = !seen.contains(r);
            seen.push(*r);
            fresh
        })
        .map(|recipient_id| Draft {
            recipient_id,
            title: title.to_owned(),
            body: body.clone(),
            data: data.clone(),
        })
        .collect()
}

fn decoded<E: CatalogEvent>(event: &StoredEvent) -> Option<E> {
    let decoded = event.decode::<E>();
    if decoded.is_none() {
        tracing::warn!(event_id = event.id, event = %event.name, "event payload does not match its type; no notification");
    }
    decoded
}

fn money(m: &Money) -> String {
    format!("{} {}", m.amount, m.currency)
}

fn preview(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= PREVIEW_CHARS {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(PREVIEW_CHARS - 1).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use catalog::contract::*;
    use chrono::Utc;

    use super::*;

    fn stored<E: CatalogEvent>(id: i64, e: E) -> StoredEvent {
        StoredEvent {
            id,
            name: E::NAME,
            payload: serde_json::to_value(&e).unwrap(),
            audience: e.audience(),
            at: Utc::now(),
        }
    }

    fn recipients(event: &StoredEvent) -> Vec<Uuid> {
        drafts(event).into_iter().map(|d| d.recipient_id).collect()
    }

    fn offer(seller: Uuid, request: Uuid) -> SellerOffer {
        SellerOffer {
            id: new_id(),
            request_id: request,
            seller_id: seller,
            price: Money {
                amount: rust_decimal::Decimal::new(12550, 2),
                currency: "USD".into(),
            },
            message: "hi".into(),
            status: OfferStatus::Pending,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            seller: None,
        }
    }

    #[test]
    fn an_offer_notifies_the_buyer_with_links_and_the_price() {
        let (buyer, seller, request) = (new_id(), new_id(), new_id());
        let o = offer(seller, request);
        let e = stored(
            1,
            RequestOfferReceived {
                request_id: request,
                offer: o.clone(),
                buyer_id: buyer,
            },
        );
        let d = drafts(&e);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].recipient_id, buyer);
        assert!(d[0].body.contains("125.50 USD"), "{}", d[0].body);
        assert_eq!(d[0].data, json!({ "requestId": request, "offerId": o.id }));
    }

    #[test]
    fn a_negotiation_update_notifies_whoever_did_not_write_it() {
        let (buyer, seller, request, offer_id) = (new_id(), new_id(), new_id(), new_id());
        let msg = |author| OfferMessage {
            id: new_id(),
            offer_id,
            author_id: author,
            message: "lower?".into(),
            price: None,
            created_at: Utc::now(),
        };
        let by_buyer = stored(
            1,
            OfferNegotiationUpdate {
                offer_id,
                request_id: request,
                message: msg(buyer),
                buyer_id: buyer,
                seller_id: seller,
            },
        );
        let by_seller = stored(
            2,
            OfferNegotiationUpdate {
                offer_id,
                request_id: request,
                message: msg(seller),
                buyer_id: buyer,
                seller_id: seller,
            },
        );
        assert_eq!(recipients(&by_buyer), vec![seller]);
        assert_eq!(recipients(&by_seller), vec![buyer]);
    }

    #[test]
    fn payment_completed_and_dispute_resolved_notify_both_sides() {
        let (buyer, seller, request, admin) = (new_id(), new_id(), new_id(), new_id());
        let paid = stored(
            1,
            PaymentCompleted {
                payment_id: new_id(),
                request_id: request,
                buyer_id: buyer,
                seller_id: seller,
            },
        );
        assert_eq!(recipients(&paid), vec![buyer, seller]);
        let resolved = stored(
            2,
            DisputeResolved {
                dispute_id: new_id(),
                resolution: Resolution::RefundBuyer,
                request_id: request,
                buyer_id: buyer,
                seller_id: seller,
                actor_id: admin,
            },
        );
        assert_eq!(recipients(&resolved), vec![buyer, seller]);
        assert_eq!(drafts(&resolved)[0].data["resolution"], "refund_buyer");
    }

    #[test]
    fn a_dispute_opened_by_the_seller_notifies_only_the_buyer() {
        let (buyer, seller, request) = (new_id(), new_id(), new_id());
        let dispute = Dispute {
            id: new_id(),
            request_id: request,
            opened_by: seller,
            reason: "never paid".into(),
            status: DisputeStatus::Open,
            resolution: None,
            note: None,
            created_at: Utc::now(),
            resolved_at: None,
        };
        let e = stored(
            1,
            DisputeOpened {
                dispute: dispute.clone(),
                buyer_id: buyer,
                seller_id: seller,
            },
        );
        assert_eq!(recipients(&e), vec![buyer]);
        assert_eq!(
            drafts(&e)[0].data,
            json!({ "requestId": request, "disputeId": dispute.id })
        );
    }

    #[test]
    fn acceptance_payout_and_chat_go_to_their_single_recipient() {
        let (buyer, seller, request) = (new_id(), new_id(), new_id());
        let accepted = stored(
            1,
            OfferAccepted {
                offer_id: new_id(),
                request_id: request,
                seller_id: seller,
                buyer_id: buyer,
            },
        );
        assert_eq!(recipients(&accepted), vec![seller]);
        let payout = stored(
            2,
            PayoutCompleted {
                payout_id: new_id(),
                tx_hash: "0xabc".into(),
                recipient_id: seller,
                request_id: request,
            },
        );
        assert_eq!(recipients(&payout), vec![seller]);
        assert_eq!(drafts(&payout)[0].data["requestId"], json!(request));
        let chat_id = new_id();
        let long = "x".repeat(500);
        let message = Message {
            id: new_id(),
            chat_id,
            sender_id: buyer,
            content: long,
            created_at: Utc::now(),
            attachments: Vec::new(),
            reactions: Vec::new(),
        };
        let chat = stored(
            3,
            ChatNewMessage {
                message,
                other_participant_id: seller,
                request_id: request,
            },
        );
        let d = drafts(&chat);
        assert_eq!(recipients(&chat), vec![seller]);
        assert_eq!(d[0].data["chatId"], json!(chat_id));
        assert_eq!(d[0].body.chars().count(), PREVIEW_CHARS);
    }

    #[test]
    fn a_published_review_notifies_the_reviewed_user_with_its_rating_and_comment() {
        let (buyer, seller, request) = (new_id(), new_id(), new_id());
        let review = Review {
            id: new_id(),
            request_id: request,
            author_id: buyer,
            subject_id: seller,
            rating: 4,
            comment: Some("Fast and friendly.".into()),
            created_at: Utc::now(),
            published_at: Some(Utc::now()),
        };
        let e = stored(1, ReviewPublished(review.clone()));
        let d = drafts(&e);
        assert_eq!(recipients(&e), vec![seller]);
        assert_eq!(d[0].body, "Rated 4 out of 5: Fast and friendly.");
        assert_eq!(
            d[0].data,
            json!({ "requestId": request, "reviewId": review.id })
        );
        let silent = stored(
            2,
            ReviewPublished(Review {
                comment: None,
                ..review
            }),
        );
        assert_eq!(drafts(&silent)[0].body, "Rated 4 out of 5.");
    }

    #[test]
    fn events_that_concern_no_one_make_no_notification() {
        let buyer = new_id();
        let created = stored(
            1,
            RequestCreated(PurchaseRequest {
                id: new_id(),
                buyer_id: buyer,
                title: "t".into(),
                description: "d".into(),
                category: "c".into(),
                budget: None,
                status: RequestStatus::Open,
                accepted_offer_id: None,
                created_at: Utc::now(),
                updated_at: Utc::now(),
                delivered_at: None,
                auto_complete_at: None,
            }),
        );
        assert!(drafts(&created).is_empty());
        let read = stored(
            2,
            NotificationRead {
                id: new_id(),
                read_at: Utc::now(),
                recipient_id: buyer,
            },
        );
        assert!(drafts(&read).is_empty());
    }
}
