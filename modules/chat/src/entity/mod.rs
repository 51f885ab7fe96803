//! The tables of the chat module: `chats`, `chat_messages`, `chat_read_markers`.

pub mod chat;
pub mod message;
pub mod read_marker;
