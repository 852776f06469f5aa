//! Reading request bodies so that every problem comes out in the contract's
//! 422 shape, located where it is.

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::domain::error::{AppError, InvalidInput};

/// The caller, proven to hold the permission that the operation registry
/// declares for the matched route: the only way a handler gets a principal.
pub struct Authorized(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(AppError::Unauthenticated)?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or_default();
        let permission =
            crate::operations::rest_permission(&parts.method, route).ok_or_else(|| {
                AppError::internal_msg(format!(
                    "{} {route} is not in the operation registry",
                    parts.method
                ))
            })?;
        principal.require(permission)?;
        if principal.viewer_token.is_some()
            && !crate::operations::rest_viewer_token_may(&parts.method, route)
        {
            return Err(AppError::Forbidden {
                required_permission: permission.as_str(),
            });
        }
        Ok(Authorized(principal))
    }
}

pub use crate::domain::error::{first_line, json_invalid};

/// A body must say it is JSON, as axum's `Json` demands.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), AppError> {
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .ends_with("json")
        });
    if is_json {
        Ok(())
    } else {
        Err(AppError::invalid(InvalidInput::new(
            &["header", "content-type"],
            "content_type",
            "Expected request with `Content-Type: application/json`",
            Value::Null,
        )))
    }
}

/// A JSON object body read field by field, as FastAPI would validate it: every
/// problem is collected at `["body", field]` and reported together. An empty
/// body reads as `{}`; fields not asked for are ignored.
pub struct BodyFields {
    fields: serde_json::Map<String, Value>,
    problems: Vec<InvalidInput>,
    /// Where these fields are: `["body"]`, or a nested object's place.
    at: Vec<Value>,
}

impl BodyFields {
    pub fn parse(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<Self, AppError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self {
                fields: Default::default(),
                problems: vec![],
                at: vec![json!("body")],
            });
        }
        require_json(headers)?;
        let value = serde_json::from_slice::<Value>(body)
            .map_err(|e| AppError::invalid(json_invalid(&e).under(vec!["body".into()])))?;
        let unstorable = crate::domain::text::unstorable_in_json(&value, &["body".into()]);
        if !unstorable.is_empty() {
            return Err(AppError::Invalid(unstorable));
        }
        match value {
            Value::Object(fields) => Ok(Self {
                fields,
                problems: vec![],
                at: vec![json!("body")],
            }),
            other => Err(AppError::invalid(InvalidInput::new(
                &["body"],
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                other,
            ))),
        }
    }

    fn refuse(&mut self, name: &str, kind: &str, msg: &str, input: &Value) {
        self.problems
            .push(InvalidInput::new(&[name], kind, msg, input.clone()).under(self.at.clone()));
    }

    /// A nested object field, read the same way (its problems located
    /// under it); absent or `null` is `None`. Give it back with [`Self::absorb`].
    pub fn object(&mut self, name: &str) -> Option<BodyFields> {
        match self.fields.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Object(fields)) => Some(BodyFields {
                fields,
                problems: vec![],
                at: self.at.iter().cloned().chain([json!(name)]).collect(),
            }),
            Some(other) => {
                self.refuse(
                    name,
                    "dict_type",
                    "Input should be a valid dictionary",
                    &other,
                );
                None
            }
        }
    }

    /// Takes a nested object's problems into this body's.
    pub fn absorb(&mut self, nested: BodyFields) {
        self.problems.extend(nested.problems);
    }

    /// An ISO 8601 date-time string, in microseconds.
    pub fn time(&mut self, name: &str) -> Option<i64> {
        let text = self.string(name, false)?;
        let parsed = crate::domain::time::parse_timestamp(&text);
        if parsed.is_none() {
            self.refuse(
                name,
                "datetime_parsing",
                "Input should be a valid ISO 8601 datetime",
                &Value::String(text),
            );
        }
        parsed
    }

    /// A string field; `null` counts as absent.
    pub fn string(&mut self, name: &str, required: bool) -> Option<String> {
        match self.fields.get(name).cloned() {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => {
                if required {
                    self.refuse(name, "missing", "Field required", &Value::Null);
                }
                None
            }
            Some(other) => {
                self.refuse(
                    name,
                    "string_type",
                    "Input should be a valid string",
                    &other,
                );
                None
            }
        }
    }

    /// A list of strings; absent or `null` is empty.
    pub fn strings(&mut self, name: &str) -> Vec<String> {
        match self.fields.get(name).cloned() {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => self.problems.push(InvalidInput {
                            loc: self
                                .at
                                .iter()
                                .cloned()
                                .chain([json!(name), json!(i)])
                                .collect(),
                            msg: "Input should be a valid string".into(),
                            kind: "string_type".into(),
                            input: other.clone(),
                            ctx: None,
                        }),
                    }
                }
                out
            }
            Some(other) => {
                self.refuse(name, "list_type", "Input should be a valid list", &other);
                vec![]
            }
        }
    }

    pub fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.fields.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(b),
            Some(other) => {
                self.refuse(name, "bool_type", "Input should be a valid boolean", &other);
                None
            }
        }
    }

    pub fn integer(&mut self, name: &str) -> Option<i64> {
        match self.fields.get(name).cloned() {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
            Some(other) => {
                self.refuse(name, "int_type", "Input should be a valid integer", &other);
                None
            }
        }
    }

    /// The problems found so far, with those the caller found checking the
    /// fields' values (located at the field, put under `["body"]` here).
    pub fn finish(self, more: Vec<InvalidInput>) -> Result<(), AppError> {
        let mut problems = self.problems;
        problems.extend(more.into_iter().map(|p| p.under(vec![Value::from("body")])));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(problems))
        }
    }
}
