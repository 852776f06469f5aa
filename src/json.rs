//! The answer's JSON, written as serde_json writes async-graphql's values:
//! compact, strings escaped by serde_json itself.

/// A JSON buffer that puts the commas between members and items.
pub(super) struct Out {
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
        let value = crate::views::stored_json(text);
        let _ = serde_json::to_writer(&mut self.bytes, &value);
    }
}
