//! The room rules the event table ([`crate::events`]) is written in, and the room names.
//! Each durable event's rules are read by the live emitter ([`target`]), by replay and
//! `GET /api/events` (who may see an event), and by the AsyncAPI generator (which rooms a
//! message reaches). Pure data: the sockets themselves are the `connections` crate's.

use uuid::Uuid;

use crate::contract::Role;
use crate::events::{Audience, EventName};

/// Which field of an event's [`Audience`] names the user of a per-user room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudienceField {
    BuyerId,
    SellerId,
    RecipientId,
    OtherParticipantId,
    SubjectId,
    AuthorId,
}

impl AudienceField {
    /// The value of this field in `audience`, when the event carries it.
    pub fn get(self, audience: &Audience) -> Option<Uuid> {
        match self {
            Self::BuyerId => audience.buyer_id,
            Self::SellerId => audience.seller_id,
            Self::RecipientId => audience.recipient_id,
            Self::OtherParticipantId => audience.other_participant_id,
            Self::SubjectId => audience.subject_id,
            Self::AuthorId => audience.author_id,
        }
    }

    /// The camelCase name, as written in the contract (`recipientId`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuyerId => "buyerId",
            Self::SellerId => "sellerId",
            Self::RecipientId => "recipientId",
            Self::OtherParticipantId => "otherParticipantId",
            Self::SubjectId => "subjectId",
            Self::AuthorId => "authorId",
        }
    }
}

/// One room an event is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomRule {
    /// `user-{field}`
    User(AudienceField),
    /// `seller-{field}`
    Seller(AudienceField),
    /// `request-{requestId}`
    Request,
    /// `chat-{chatId}`
    Chat,
    /// `sellers`
    Sellers,
    /// `buyers`
    Buyers,
    /// `admin`
    Admin,
    /// Every connected socket.
    Everyone,
}

impl RoomRule {
    /// The room's name pattern as the contract writes it (`user-{recipientId}`).
    pub fn pattern(self) -> String {
        match self {
            Self::User(f) => format!("user-{{{}}}", f.as_str()),
            Self::Seller(f) => format!("seller-{{{}}}", f.as_str()),
            Self::Request => "request-{requestId}".to_owned(),
            Self::Chat => "chat-{chatId}".to_owned(),
            Self::Sellers => SELLERS.to_owned(),
            Self::Buyers => BUYERS.to_owned(),
            Self::Admin => ADMIN.to_owned(),
            Self::Everyone => "everyone".to_owned(),
        }
    }

    /// The concrete room for this audience; `None` when the audience lacks the id (logged by
    /// the caller) or for [`RoomRule::Everyone`], which is not a room.
    pub fn room(self, audience: &Audience) -> Option<String> {
        match self {
            Self::User(f) => f.get(audience).map(user_room),
            Self::Seller(f) => f.get(audience).map(seller_room),
            Self::Request => audience.request_id.map(request_room),
            Self::Chat => audience.chat_id.map(chat_room),
            Self::Sellers => Some(SELLERS.to_owned()),
            Self::Buyers => Some(BUYERS.to_owned()),
            Self::Admin => Some(ADMIN.to_owned()),
            Self::Everyone => None,
        }
    }
}

/// Where one emit goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every socket of the namespace.
    Everyone,
    /// The union of these rooms (a socket in several receives one copy).
    Rooms(Vec<String>),
}

/// The target of a durable event with this audience.
pub fn target(name: EventName, audience: &Audience) -> Target {
    let rules = name.rooms();
    if rules.contains(&RoomRule::Everyone) {
        return Target::Everyone;
    }
    let mut rooms: Vec<String> = Vec::with_capacity(rules.len());
    for rule in rules {
        match rule.room(audience) {
            Some(room) if !rooms.contains(&room) => rooms.push(room),
            Some(_) => {}
            None => {
                tracing::warn!(event = %name, rule = %rule.pattern(), "event lacks the id its room needs; room skipped")
            }
        }
    }
    Target::Rooms(rooms)
}

pub const SELLERS: &str = "sellers";
pub const BUYERS: &str = "buyers";
pub const ADMIN: &str = "admin";

pub fn user_room(id: Uuid) -> String {
    format!("user-{id}")
}
pub fn seller_room(id: Uuid) -> String {
    format!("seller-{id}")
}
pub fn buyer_room(id: Uuid) -> String {
    format!("buyer-{id}")
}
pub fn request_room(id: Uuid) -> String {
    format!("request-{id}")
}
pub fn chat_room(id: Uuid) -> String {
    format!("chat-{id}")
}

/// The rooms a socket of user `id` with `role` joins on connect.
pub fn own_rooms(id: Uuid, role: Role) -> Vec<String> {
    let mut rooms = vec![user_room(id)];
    match role {
        Role::Seller => rooms.extend([seller_room(id), SELLERS.to_owned()]),
        Role::Buyer => rooms.extend([buyer_room(id), BUYERS.to_owned()]),
        Role::Admin => rooms.push(ADMIN.to_owned()),
    }
    rooms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durable_events_have_room_rules_and_live_ones_a_description() {
        for name in EventName::ALL {
            if name.is_durable() {
                assert!(!name.rooms().is_empty(), "{name} has no rooms");
                assert_eq!(name.live_rooms(), None, "{name}");
            } else {
                assert!(name.rooms().is_empty(), "{name} is live-only");
                assert!(
                    name.live_rooms().is_some(),
                    "{name} says nowhere where it goes"
                );
            }
        }
        assert_eq!(
            EventName::ChatNewMessage.rooms(),
            &[
                RoomRule::Chat,
                RoomRule::User(AudienceField::OtherParticipantId)
            ]
        );
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for name in EventName::ALL {
            assert_eq!(EventName::parse(name.as_str()), Some(name));
            assert_eq!(
                serde_json::to_value(name).unwrap(),
                serde_json::Value::from(name.as_str())
            );
        }
        let mut wire: Vec<&str> = EventName::ALL.iter().map(|n| n.as_str()).collect();
        wire.sort_unstable();
        wire.dedup();
        assert_eq!(wire.len(), EventName::ALL.len());
        assert_eq!(
            EventName::parse("offer:accepted"),
            Some(EventName::OfferAccepted)
        );
        assert_eq!(EventName::parse("offer:unknown"), None);
    }

    #[test]
    fn targets_are_the_union_of_distinct_rooms() {
        let buyer = Uuid::now_v7();
        let a = Audience {
            buyer_id: Some(buyer),
            seller_id: Some(buyer),
            request_id: Some(buyer),
            ..Default::default()
        };
        let Target::Rooms(rooms) = target(EventName::PaymentCompleted, &a) else {
            panic!("rooms expected")
        };
        assert_eq!(rooms, vec![user_room(buyer)]);
        let Target::Rooms(rooms) = target(EventName::RequestStatusUpdated, &a) else {
            panic!("rooms expected")
        };
        assert_eq!(rooms, vec![request_room(buyer), user_room(buyer)]);
        assert_eq!(
            target(EventName::SystemAnnouncement, &Audience::default()),
            Target::Everyone
        );
    }
}
