//! Text that every backend can store. PostgreSQL refuses NUL characters in
//! `text` (SQLite keeps them), so NUL is refused at the edge, the same way on
//! both backends, and cleaned out of what the gateway records itself.

use serde_json::Value;

use crate::domain::error::InvalidInput;

pub const UNSTORABLE_TEXT_MSG: &str = "Text must not contain NUL characters";

/// Whether `text` can be stored as it is on every backend.
pub fn is_storable(text: &str) -> bool {
    !text.contains('\0')
}

/// `text` with every NUL replaced by U+FFFD, for what the gateway records.
pub fn storable(text: &str) -> String {
    if is_storable(text) {
        text.to_owned()
    } else {
        text.replace('\0', "\u{FFFD}")
    }
}

/// The problem reported for unstorable text at `loc`.
pub fn unstorable_at(loc: Vec<Value>, input: impl Into<Value>) -> InvalidInput {
    InvalidInput {
        loc,
        msg: UNSTORABLE_TEXT_MSG.into(),
        kind: "string_unstorable".into(),
        input: input.into(),
        ctx: None,
    }
}

/// Every string (object keys included) under `value` that holds a NUL,
/// each located from `at`.
pub fn unstorable_in_json(value: &Value, at: &[Value]) -> Vec<InvalidInput> {
    let mut found = Vec::new();
    walk(value, &mut at.to_vec(), &mut found);
    found
}

fn walk(value: &Value, loc: &mut Vec<Value>, found: &mut Vec<InvalidInput>) {
    match value {
        Value::String(s) if !is_storable(s) => found.push(unstorable_at(loc.clone(), s.as_str())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                loc.push(Value::from(i));
                walk(item, loc, found);
                loc.pop();
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                loc.push(Value::from(key.as_str()));
                if !is_storable(key) {
                    found.push(unstorable_at(loc.clone(), key.as_str()));
                }
                walk(item, loc, found);
                loc.pop();
            }
        }
        _ => {}
    }
}

/// Whether a JSON text may hold a NUL character at all: only through the
/// `\u0000` escape, as a raw NUL byte is not JSON. A cheap test before a walk.
pub fn json_may_hold_nul(raw: &[u8]) -> bool {
    raw.windows(6).any(|w| w == b"\\u0000")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_wherever_it_hides_and_cleaned_from_records() {
        let body =
            json!([{ "action": "ok" }, { "action": "a\u{0}b", "metadata": { "k\u{0}": 1 } }]);
        let locs: Vec<Value> = unstorable_in_json(&body, &[json!("body")])
            .into_iter()
            .map(|p| Value::Array(p.loc))
            .collect();
        assert_eq!(
            locs,
            [
                json!(["body", 1, "action"]),
                json!(["body", 1, "metadata", "k\u{0}"])
            ]
        );
        assert!(unstorable_in_json(&json!({ "a": ["x", 1, null] }), &[]).is_empty());
        assert_eq!(storable("a\u{0}b"), "a\u{FFFD}b");
        assert!(json_may_hold_nul(br#"{"a":"\u0000"}"#));
        assert!(!json_may_hold_nul(br#"{"a":"u0000"}"#));
    }
}

/// Stored JSON back to a value; stored text is always an object, and a
/// damaged row answers `{}` rather than failing the whole page.
pub fn stored_json(text: &str) -> Value {
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Default::default()))
}
