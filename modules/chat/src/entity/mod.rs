//! The tables of the chat module: `chats`, `chat_messages`, `chat_read_markers`,
//! `chat_reactions`.

pub mod chat;
pub mod message;
pub mod reaction;
pub mod read_marker;
