//! The table of the files module: `attachments`.

pub mod attachment;
