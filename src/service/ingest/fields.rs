//! Field checks that need no database.

use crate::domain::error::InvalidInput;
use crate::domain::ids::IdKind;
use crate::domain::time::{now_micros, parse_timestamp};
use serde_json::{json, Value};

use super::*;

/// Field checks that need no database. Locations are `[index, field]`.
pub(super) fn check_fields(i: usize, e: &IngestEvent, problems: &mut Vec<InvalidInput>) {
    let texts: [(&str, &Option<String>, usize); 19] = [
        ("id", &e.id, MAX_ID),
        ("trace_id", &e.trace_id, 128),
        ("user_id", &e.user_id, MAX_ID),
        ("workspace_id", &e.workspace_id, MAX_ID),
        ("app_id", &e.app_id, MAX_ID),
        ("endpoint_id", &e.endpoint_id, MAX_ID),
        ("augmentation_id", &e.augmentation_id, MAX_ID),
        ("principal_type", &e.principal_type, 64),
        ("principal_id", &e.principal_id, MAX_ID),
        ("token_id", &e.token_id, MAX_ID),
        ("token_type", &e.token_type, 64),
        ("method", &e.method, 16),
        ("path", &e.path, MAX_TEXT),
        ("resource_type", &e.resource_type, 64),
        ("resource_id", &e.resource_id, MAX_TEXT),
        ("action", &e.action, 64),
        ("error_code", &e.error_code, 128),
        ("execution_id", &e.execution_id, 128),
        ("timestamp", &e.timestamp, 64),
    ];
    for (field, value, max) in texts {
        if let Some(v) = value {
            if v.chars().count() > max {
                problems.push(at(
                    i,
                    field,
                    "string_too_long",
                    format!("String should have at most {max} characters"),
                    v.clone(),
                ));
            }
        }
    }
    match e.action.as_deref().map(str::trim) {
        None | Some("") => problems.push(at(i, "action", "missing", "Field required", Value::Null)),
        Some(_) => {}
    }
    if let Some(id) = &e.id {
        if IdKind::of(id) != Some(IdKind::Activity) {
            problems.push(at(
                i,
                "id",
                "value_error",
                "An activity id starts with act_",
                id.clone(),
            ));
        }
    }
    if let Some(ts) = &e.timestamp {
        match parse_timestamp(ts) {
            None => problems.push(at(
                i,
                "timestamp",
                "datetime_parsing",
                "Input should be a valid ISO 8601 datetime",
                ts.clone(),
            )),
            // Far futures and pre-epoch times are typos, and would break hour arithmetic.
            Some(t)
                if !(0..=now_micros() + 366 * crate::domain::time::MICROS_PER_DAY).contains(&t) =>
            {
                problems.push(at(
                    i,
                    "timestamp",
                    "value_error",
                    "timestamp must be after 1970 and at most a year ahead",
                    ts.clone(),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(code) = e.status_code.filter(|c| !(100..=599).contains(c)) {
        problems.push(at(
            i,
            "status_code",
            "value_error",
            "status_code must be between 100 and 599",
            code,
        ));
    }
    if let Some(d) = e.duration_ms.filter(|d| *d < 0) {
        problems.push(at(
            i,
            "duration_ms",
            "greater_than_equal",
            "Input should be greater than or equal to 0",
            d,
        ));
    }
    if let Some(d) = e.duration_ms.filter(|d| *d > MAX_DURATION_MS) {
        problems.push(
            at(
                i,
                "duration_ms",
                "less_than_equal",
                format!("Input should be less than or equal to {MAX_DURATION_MS}"),
                d,
            )
            .with_ctx(json!({ "le": MAX_DURATION_MS })),
        );
    }
    for (field, value) in [
        ("stages_completed", e.stages_completed),
        ("total_stages", e.total_stages),
    ] {
        if let Some(v) = value.filter(|v| !(0..=1_000).contains(v)) {
            problems.push(at(
                i,
                field,
                "value_error",
                format!("{field} must be between 0 and 1000"),
                v,
            ));
        }
    }
    if let (Some(done), Some(total)) = (e.stages_completed, e.total_stages) {
        if done > total {
            problems.push(at(
                i,
                "stages_completed",
                "value_error",
                "stages_completed cannot exceed total_stages",
                done,
            ));
        }
    }
    if let Some(usage) = &e.token_usage {
        let mut sum: i64 = 0;
        for (kind, count) in usage {
            let at_kind = vec![json!(i), json!("token_usage"), json!(kind)];
            match count.as_i64() {
                Some(n) if (0..=MAX_TOKENS).contains(&n) => sum = sum.saturating_add(n),
                Some(n) if n > MAX_TOKENS => problems.push(InvalidInput {
                    loc: at_kind,
                    msg: format!("Input should be less than or equal to {MAX_TOKENS}"),
                    kind: "less_than_equal".into(),
                    input: count.clone(),
                    ctx: Some(json!({ "le": MAX_TOKENS })),
                }),
                _ => problems.push(InvalidInput {
                    loc: at_kind,
                    msg: "Token counts are non-negative integers".into(),
                    kind: "value_error".into(),
                    input: count.clone(),
                    ctx: None,
                }),
            }
        }
        if sum > MAX_TOKENS {
            problems.push(InvalidInput {
                loc: vec![json!(i), json!("token_usage")],
                msg: format!("The token counts should add up to at most {MAX_TOKENS}"),
                kind: "less_than_equal".into(),
                input: Value::from(sum),
                ctx: Some(json!({ "le": MAX_TOKENS })),
            });
        }
    }
}
