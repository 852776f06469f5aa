//! An answer's JSON written straight into one buffer, as serde_json writes
//! the same values (compact, strings escaped by serde_json itself): the
//! planned GraphQL pages and the REST feed pages write their rows with it,
//! without a value per field.

use sea_orm::QueryResult;

use crate::service::activity;

/// A JSON buffer that puts the commas between members and items.
pub struct Out {
    bytes: Vec<u8>,
    /// Per open object or list: where it starts, and whether nothing has
    /// been written in it yet.
    open: Vec<(usize, bool)>,
}

impl Out {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
            open: Vec::with_capacity(8),
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn raw(&mut self, text: &str) {
        self.bytes.extend_from_slice(text.as_bytes());
    }

    pub fn open(&mut self) {
        self.open.push((self.bytes.len(), true));
        self.bytes.push(b'{');
    }

    /// Closes an object; one whose every field was skipped is `null`, as
    /// async-graphql answers it.
    pub fn close(&mut self) {
        match self.open.pop() {
            Some((start, true)) => {
                self.bytes.truncate(start);
                self.null();
            }
            _ => self.bytes.push(b'}'),
        }
    }

    /// Whether the object or list open last holds nothing yet.
    pub fn nothing_written(&self) -> bool {
        self.open.last().is_some_and(|(_, empty)| *empty)
    }

    pub fn open_list(&mut self) {
        self.open.push((self.bytes.len(), true));
        self.bytes.push(b'[');
    }

    pub fn close_list(&mut self) {
        self.open.pop();
        self.bytes.push(b']');
    }

    fn separate(&mut self) {
        if let Some((_, empty)) = self.open.last_mut() {
            if !std::mem::replace(empty, false) {
                self.bytes.push(b',');
            }
        }
    }

    /// A member's key. GraphQL names are `[_A-Za-z][_0-9A-Za-z]*`: nothing
    /// in them needs escaping.
    pub fn key(&mut self, key: &str) {
        self.separate();
        self.bytes.push(b'"');
        self.bytes.extend_from_slice(key.as_bytes());
        self.bytes.extend_from_slice(b"\":");
    }

    /// Before each item of a list.
    pub fn item(&mut self) {
        self.separate();
    }

    pub fn string(&mut self, text: &str) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.bytes, text);
    }

    pub fn number(&mut self, n: impl itoa::Integer) {
        self.bytes
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    pub fn bool(&mut self, b: bool) {
        self.raw(if b { "true" } else { "false" });
    }

    pub fn null(&mut self) {
        self.raw("null");
    }

    /// Stored JSON text, as the `Activity` type answers it: the object it
    /// holds, re-serialised (so its bytes are what serde_json writes of it),
    /// or `{}`.
    pub fn stored_json(&mut self, text: &str) {
        // The empty object (most events' `token_usage`) is written as it is.
        if text == "{}" {
            return self.raw(text);
        }
        let value = crate::views::stored_json(text);
        let _ = serde_json::to_writer(&mut self.bytes, &value);
    }

    /// The column at `at` of a row [`activity::page_rows`] read, as `kind`;
    /// `None` when the row does not hold it so.
    pub fn column(&mut self, row: &QueryResult, at: usize, kind: Kind) -> Option<()> {
        match kind {
            Kind::Text => self.string(activity::text_at(row, at)??),
            Kind::OptionalText => match activity::text_at(row, at)? {
                Some(text) => self.string(text),
                None => self.null(),
            },
            Kind::Timestamp => self.string(&crate::domain::time::format_micros(
                activity::value_at(row, at)??,
            )),
            Kind::Int => self.number(activity::value_at::<i32>(row, at)??),
            Kind::OptionalInt => match activity::value_at::<i32>(row, at)? {
                Some(n) => self.number(n),
                None => self.null(),
            },
            Kind::BigInt => self.number(activity::value_at::<i64>(row, at)??),
            Kind::Bool => self.bool(activity::value_at(row, at)??),
            Kind::Json => self.stored_json(activity::text_at(row, at)??),
            Kind::LogIndex => {
                let index: Option<i64> = activity::value_at(row, at)?;
                self.number(index.unwrap_or(-1))
            }
        }
        Some(())
    }
}

/// How a column of a page's row is written, as the `Activity` type (and
/// the REST event) writes it.
#[derive(Clone, Copy)]
pub enum Kind {
    Text,
    OptionalText,
    Timestamp,
    Int,
    OptionalInt,
    BigInt,
    Bool,
    /// Stored JSON text, written as the object it holds (`{}` when it holds
    /// none).
    Json,
    /// `logIndex`: -1 for an event the log has not reached.
    LogIndex,
}
