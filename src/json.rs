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
        // Written as it is parsed, without a `Value` (an allocation per
        // member, key and text: a tenth of a page's work); whatever that
        // declines takes the way through a `Value`.
        let start = self.bytes.len();
        let mut parsed = serde_json::Deserializer::from_str(text);
        let written = serde::de::DeserializeSeed::deserialize(
            Rewritten {
                out: &mut self.bytes,
                top: true,
            },
            &mut parsed,
        )
        .and_then(|()| parsed.end());
        if written.is_err() {
            self.bytes.truncate(start);
            let value = crate::views::stored_json(text);
            let _ = serde_json::to_writer(&mut self.bytes, &value);
        }
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
            Kind::Timestamp => {
                // No character of a time needs escaping.
                self.bytes.push(b'"');
                let _ = crate::domain::time::write_micros(
                    &mut self.bytes,
                    activity::value_at(row, at)??,
                );
                self.bytes.push(b'"');
            }
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

/// A JSON value written into `out` as it is parsed, as serde_json writes a
/// `Value` parsed from the same text: the same escapes and numbers, members
/// in their order. It declines (an error) what a `Value` would answer
/// differently from its text: anything but an object at the top (a stored
/// object is answered as `{}` then), and an object naming a key twice (a
/// `Value` keeps the last value, in the first one's place).
struct Rewritten<'o> {
    out: &'o mut Vec<u8>,
    top: bool,
}

impl Rewritten<'_> {
    fn scalar<E: serde::de::Error>(self, value: impl serde::Serialize) -> Result<(), E> {
        if self.top {
            return Err(E::custom("not an object"));
        }
        serde_json::to_writer(self.out, &value).map_err(E::custom)
    }

    fn inner(&mut self) -> Rewritten<'_> {
        Rewritten {
            out: self.out,
            top: false,
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Rewritten<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, parsed: D) -> Result<(), D::Error> {
        parsed.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Rewritten<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(v)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        // As a `Value` holds it: a number only when finite.
        self.scalar(serde_json::Number::from_f64(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(v)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.scalar(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        if self.top {
            return Err(serde::de::Error::custom("not an object"));
        }
        self.out.push(b'[');
        let mut first = true;
        loop {
            let at = self.out.len();
            if !first {
                self.out.push(b',');
            }
            if items.next_element_seed(self.inner())?.is_none() {
                self.out.truncate(at);
                break;
            }
            first = false;
        }
        self.out.push(b']');
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut members: A) -> Result<(), A::Error> {
        // Keys seen, looked through while few, hashed when many (a stored
        // object may have thousands).
        const FEW: usize = 16;
        let mut few: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        let mut many: std::collections::HashSet<std::borrow::Cow<'de, str>> = Default::default();
        self.out.push(b'{');
        while let Some(key) = members.next_key_seed(Key)? {
            let repeated = if few.len() < FEW {
                few.contains(&key)
            } else {
                if many.is_empty() {
                    many.extend(few.iter().cloned());
                }
                many.contains(&key)
            };
            if repeated {
                return Err(serde::de::Error::custom("a key twice"));
            }
            if !few.is_empty() {
                self.out.push(b',');
            }
            serde_json::to_writer(&mut *self.out, key.as_ref())
                .map_err(serde::de::Error::custom)?;
            self.out.push(b':');
            members.next_value_seed(self.inner())?;
            if few.len() < FEW {
                few.push(key);
            } else {
                many.insert(key);
            }
        }
        self.out.push(b'}');
        Ok(())
    }
}

/// An object's key, borrowed from the text when it holds no escape.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, parsed: D) -> Result<Self::Value, D::Error> {
        parsed.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::Out;
    use rand::{Rng, SeedableRng};
    use serde_json::{json, Value};

    /// What a stored text answers through a `Value`: the reference.
    fn through_a_value(text: &str) -> String {
        serde_json::to_string(&crate::views::stored_json(text)).unwrap()
    }

    fn written(text: &str) -> String {
        let mut out = Out::with_capacity(0);
        out.stored_json(text);
        String::from_utf8(out.into_bytes()).unwrap()
    }

    #[test]
    fn stored_json_is_written_as_through_a_value_whatever_its_text() {
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
        let many_keys = format!(
            "{{{}}}",
            (0..100)
                .map(|i| format!(r#""k{i}":{i}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let many_keys_one_twice = many_keys.replace(r#""k99":99"#, r#""k3":"again""#);
        // At the edge of the keys looked through (16) and past it.
        let sixteenth_twice = many_keys.replace(r#""k16":16"#, r#""k15":"again""#);
        let seventeenth_twice = many_keys.replace(r#""k17":17"#, r#""k16":"again""#);
        let late_twice = many_keys.replace(r#""k98":98"#, r#""k50":"again""#);
        let texts = [
            "{}",
            " { } ",
            r#"{"a":1}"#,
            "{\n  \"a\" : [ 1 , 2.0 , -0 , 1e2 , 1E-2 , 12345678901234567890 , 123456789012345678901234 , -9223372036854775808 ] ,\n \"b\" : { } }",
            r#"{"esc":"\u0041\/\"\\\n\t\u0000\u001f\u007f\ud83d\ude00é","\u006b":"key escaped"}"#,
            r#"{"nested":{"x":[{"y":null,"z":true},[],[[]],false],"w":""}}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"o":{"k":1,"k":2}}"#,
            r#"{"l":[{"k":1,"k":2}]}"#,
            &many_keys,
            &many_keys_one_twice,
            &sixteenth_twice,
            &seventeenth_twice,
            &late_twice,
            &deep_object,
            "[1,2]",
            "\"text\"",
            "42",
            "null",
            "",
            "{",
            r#"{"a":1}x"#,
            r#"{"a":1} {"b":2}"#,
            r#"{"a":tru}"#,
            r#"{"a":1e999}"#,
            r#"{'a':1}"#,
        ];
        for text in texts {
            assert_eq!(written(text), through_a_value(text), "{text}");
        }
        // Written inside a buffer that holds more, a declined text leaves
        // nothing of itself but `{}`.
        let mut out = Out::with_capacity(0);
        out.raw("[");
        out.stored_json(r#"{"a":[1,2,{"b":1,"b":2}]}"#);
        out.raw("]");
        assert_eq!(out.into_bytes(), br#"[{"a":[1,2,{"b":2}]}]"#);
    }

    #[test]
    fn random_objects_are_written_as_through_a_value_compact_or_pretty() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(26);
        for round in 0..2_000 {
            let value = random_object(&mut rng, 0);
            for text in [
                serde_json::to_string(&value).unwrap(),
                serde_json::to_string_pretty(&value).unwrap(),
            ] {
                assert_eq!(
                    written(&text),
                    through_a_value(&text),
                    "round {round}: {text}"
                );
            }
        }
    }

    fn random_object(rng: &mut impl Rng, depth: u32) -> Value {
        let members = rng.random_range(0..6);
        let mut object = serde_json::Map::new();
        for _ in 0..members {
            object.insert(random_text(rng), random_value(rng, depth + 1));
        }
        Value::Object(object)
    }

    fn random_value(rng: &mut impl Rng, depth: u32) -> Value {
        match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(rng.random::<bool>()),
            2 => json!(rng.random::<i64>()),
            3 => json!(rng.random::<u64>()),
            4 => json!(rng.random::<f64>() * 10f64.powi(rng.random_range(-20..20))),
            5 => Value::String(random_text(rng)),
            6 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => random_object(rng, depth),
        }
    }

    fn random_text(rng: &mut impl Rng) -> String {
        const PIECES: [&str; 10] = ["a", "k", "\"", "\\", "\n", "\u{0}", "é", "😀", "/", " "];
        (0..rng.random_range(0..5))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }
}
