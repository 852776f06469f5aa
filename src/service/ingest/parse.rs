//! Reading a batch from its JSON: whole when it can be, item by item for errors at [index, field].

use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::text::unstorable_in_json;
use serde_json::{json, Value};

use super::*;

/// A batch from a raw JSON body: the whole array at once when every item is
/// well-formed (the common case, and several times faster than through
/// `Value`s), else item by item for errors at `[index, field]`.
pub fn parse_body(body: &[u8]) -> AppResult<Vec<IngestEvent>> {
    let may_hold_nul = crate::domain::text::json_may_hold_nul(body);
    if !may_hold_nul {
        if let Ok(events) = serde_json::from_slice::<Vec<IngestEvent>>(body) {
            return Ok(events);
        }
    }
    let value = serde_json::from_slice::<Value>(body);
    if let (true, Ok(value)) = (may_hold_nul, &value) {
        let unstorable = unstorable_in_json(value, &[]);
        if !unstorable.is_empty() {
            return Err(AppError::Invalid(unstorable));
        }
    }
    match value {
        Ok(Value::Array(items)) => parse_items(items).map_err(AppError::Invalid),
        Ok(other) => Err(AppError::invalid(InvalidInput::new(
            &[],
            "list_type",
            "Input should be a valid list",
            other,
        ))),
        Err(e) => Err(AppError::invalid(crate::domain::error::json_invalid(&e))),
    }
}

/// Parses the raw JSON items one by one, so that a bad field of one event is
/// reported at `[index, field]` and the other events are still checked.
pub fn parse_items(items: Vec<Value>) -> Result<Vec<IngestEvent>, Vec<InvalidInput>> {
    let mut events = Vec::with_capacity(items.len());
    let mut problems = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, IngestEvent>(&item) {
            Ok(event) => events.push(event),
            Err(e) => {
                let field = e.path().to_string();
                let mut loc = vec![json!(i)];
                if field != "." {
                    loc.extend(field.split('.').map(|p| json!(p)));
                }
                let input = if item.is_object() {
                    item.get(field.split('.').next().unwrap_or_default())
                        .cloned()
                        .unwrap_or(Value::Null)
                } else {
                    item
                };
                problems.push(InvalidInput {
                    loc,
                    msg: crate::domain::error::first_line(&e.inner().to_string()),
                    kind: "type_error".into(),
                    input,
                    ctx: None,
                });
            }
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(problems)
    }
}

pub(super) fn at(
    i: usize,
    field: &str,
    kind: &str,
    msg: impl Into<String>,
    input: impl Into<Value>,
) -> InvalidInput {
    InvalidInput {
        loc: vec![json!(i), json!(field)],
        msg: msg.into(),
        kind: kind.into(),
        input: input.into(),
        ctx: None,
    }
}
