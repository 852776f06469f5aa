//! Query parameters, validated the way FastAPI reports them: every failing
//! parameter is listed, each at `["query", name]`, with the input as given.

use serde_json::json;

use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::time::parse_timestamp;

pub struct Params {
    pairs: Vec<(String, String)>,
    problems: Vec<InvalidInput>,
}

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        match serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or_default()) {
            Ok(pairs) => Params {
                pairs,
                problems: Vec::new(),
            },
            Err(_) => Params {
                pairs: Vec::new(),
                problems: vec![InvalidInput::new(
                    &["query"],
                    "query_invalid",
                    "The query string is malformed",
                    raw.unwrap_or_default(),
                )],
            },
        }
    }

    /// The last value given for a text filter; an empty value counts as
    /// absent (no filter).
    pub fn string(&self, name: &str) -> Option<String> {
        self.given(name).filter(|v| !v.is_empty())
    }

    /// The last value given for `name`, empty or not. Numbers, times,
    /// choices and cursors read this: `?limit=` is a bad limit, not none.
    pub fn given(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    pub fn report(&mut self, problem: InvalidInput) {
        self.problems.push(problem);
    }

    pub fn int(&mut self, name: &str, min: Option<i64>) -> Option<i64> {
        let text = self.given(name)?;
        let Ok(value) = text.trim().parse::<i64>() else {
            self.report(InvalidInput::new(
                &["query", name],
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                text,
            ));
            return None;
        };
        if let Some(min) = min.filter(|m| value < *m) {
            self.report(
                InvalidInput::new(
                    &["query", name],
                    "greater_than_equal",
                    format!("Input should be greater than or equal to {min}"),
                    text,
                )
                .with_ctx(json!({ "ge": min })),
            );
            return None;
        }
        Some(value)
    }

    /// An integer that must be given: missing is FastAPI's `missing`.
    pub fn required_int(&mut self, name: &str) -> Option<i64> {
        if self.given(name).is_none() {
            self.report(InvalidInput::new(
                &["query", name],
                "missing",
                "Field required",
                serde_json::Value::Null,
            ));
            return None;
        }
        self.int(name, None)
    }

    /// An integer the domain bounds (a page size, hours): read as text here,
    /// checked by `parse`, refused at `["query", name]` with the text given.
    pub fn bounded<T>(
        &mut self,
        name: &str,
        parse: impl Fn(Option<i64>) -> Result<T, InvalidInput>,
    ) -> Option<T> {
        let given = self.given(name);
        let value = match &given {
            None => None,
            Some(_) => Some(self.int(name, None)?),
        };
        parse(value)
            .map_err(|refused| {
                let mut refused = refused.under(vec!["query".into(), name.into()]);
                if let Some(text) = given {
                    refused.input = text.into();
                }
                self.report(refused);
            })
            .ok()
    }

    pub fn time(&mut self, name: &str) -> Option<i64> {
        let text = self.given(name)?;
        match parse_timestamp(&text) {
            Some(t) => Some(t),
            None => {
                self.report(InvalidInput::new(
                    &["query", name],
                    "datetime_parsing",
                    "Input should be a valid ISO 8601 datetime",
                    text,
                ));
                None
            }
        }
    }

    /// One of `choices`, as given.
    pub fn choice(&mut self, name: &str, choices: &[&str]) -> Option<String> {
        let text = self.given(name)?;
        if choices.contains(&text.as_str()) {
            return Some(text);
        }
        let expected = choices
            .iter()
            .map(|c| format!("'{c}'"))
            .collect::<Vec<_>>()
            .join(" or ");
        self.report(
            InvalidInput::new(
                &["query", name],
                "literal_error",
                format!("Input should be {expected}"),
                text,
            )
            .with_ctx(json!({ "expected": expected })),
        );
        None
    }

    pub fn extend(&mut self, problems: Vec<InvalidInput>) {
        self.problems.extend(problems);
    }

    /// 422 listing every problem found so far, if any.
    pub fn check(&mut self) -> AppResult<()> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(AppError::Invalid(std::mem::take(&mut self.problems)))
        }
    }
}
