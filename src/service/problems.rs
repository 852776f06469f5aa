//! Problems: notes about something wrong in an org, created, resolved and
//! unresolved by its users, optionally pointing at an activity or a session.

use crate::domain::grant::{cap, Grant};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use entity::problem::{self, Column};

use crate::domain::error::{AppError, AppResult, InvalidInput};
use crate::domain::feed::Cursor;
use crate::domain::ids::{new_id, IdKind};
use crate::domain::time::now_micros;

pub const MAX_TYPE_CHARS: usize = 100;
pub const MAX_MESSAGE_CHARS: usize = 4_000;

#[derive(Debug, Clone, Default)]
pub struct NewProblem {
    pub kind: String,
    pub message: String,
    pub activity_id: Option<String>,
    pub session_id: Option<String>,
}

/// A text field's bounds: not blank, at most `max` characters.
pub fn check_text(field: &str, value: &str, max: usize) -> Option<InvalidInput> {
    let chars = value.chars().count();
    if value.trim().is_empty() {
        Some(
            InvalidInput::new(
                &[field],
                "string_too_short",
                "String should have at least 1 character",
                value,
            )
            .with_ctx(json!({ "min_length": 1 })),
        )
    } else if chars > max {
        Some(
            InvalidInput::new(
                &[field],
                "string_too_long",
                format!("String should have at most {max} characters"),
                value,
            )
            .with_ctx(json!({ "max_length": max })),
        )
    } else {
        None
    }
}

/// Creates a problem in the caller's org. `type` is the field's name in both
/// APIs' errors (the column is `kind`). References must be the org's own.
pub async fn create(
    db: &impl ConnectionTrait,
    principal: Grant<'_, cap::ProblemCreate>,
    new: NewProblem,
) -> AppResult<problem::Model> {
    let problems: Vec<InvalidInput> = [
        check_text("type", &new.kind, MAX_TYPE_CHARS),
        check_text("message", &new.message, MAX_MESSAGE_CHARS),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let org = principal.org_id.as_str();
    if let Some(id) = &new.activity_id {
        let found = entity::activity_event::Entity::find()
            .select_only()
            .column(entity::activity_event::Column::Id)
            .filter(entity::activity_event::Column::Id.eq(id.as_str()))
            .filter(entity::activity_event::Column::OrgId.eq(org))
            .into_tuple::<String>()
            .one(db)
            .await?;
        if found.is_none() {
            return Err(AppError::not_found("activity", id.as_str()));
        }
    }
    if let Some(id) = &new.session_id {
        let found = entity::session::Entity::find()
            .filter(entity::session::Column::Id.eq(id.as_str()))
            .filter(entity::session::Column::OrgId.eq(org))
            .one(db)
            .await?;
        if found.is_none() {
            return Err(AppError::not_found("session", id.as_str()));
        }
    }
    let now = now_micros();
    let model = problem::ActiveModel {
        id: Set(new_id(IdKind::Problem)),
        org_id: Set(org.to_owned()),
        kind: Set(new.kind.trim().to_owned()),
        message: Set(new.message),
        activity_id: Set(new.activity_id),
        session_id: Set(new.session_id),
        created_by: Set(Some(principal.principal_id.clone())),
        resolved: Set(false),
        resolved_at: Set(None),
        resolved_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    Ok(model.insert(db).await?)
}

/// One problem of the org; another org's answers like an unknown one.
pub async fn get(db: &impl ConnectionTrait, org_id: &str, id: &str) -> AppResult<problem::Model> {
    problem::Entity::find_by_id(id.to_owned())
        .filter(Column::OrgId.eq(org_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("problem", id))
}

/// Resolves (`resolved`) or unresolves a problem; resolving records who and
/// when, unresolving clears both. Setting the state it already has changes
/// nothing but `updated_at`.
pub async fn set_resolved(
    db: &impl ConnectionTrait,
    principal: Grant<'_, cap::ProblemResolve>,
    id: &str,
    resolved: bool,
) -> AppResult<problem::Model> {
    let current = get(db, &principal.org_id, id).await?;
    let now = now_micros();
    let mut model: problem::ActiveModel = current.clone().into();
    model.resolved = Set(resolved);
    model.updated_at = Set(now);
    if resolved && !current.resolved {
        model.resolved_at = Set(Some(now));
        model.resolved_by = Set(Some(principal.principal_id.clone()));
    } else if !resolved {
        model.resolved_at = Set(None);
        model.resolved_by = Set(None);
    }
    Ok(model.update(db).await?)
}

/// The list's name in its cursors: a cursor of the resolved list does not
/// page the unresolved one.
pub fn list_name(resolved: Option<bool>) -> String {
    format!("problems|resolved={resolved:?}")
}

/// A page of the org's problems, newest first: `(rows, has_more)`.
pub async fn page(
    db: &impl ConnectionTrait,
    org_id: &str,
    resolved: Option<bool>,
    limit: u64,
    after: Option<&Cursor>,
) -> AppResult<(Vec<problem::Model>, bool)> {
    let mut query = problem::Entity::find().filter(Column::OrgId.eq(org_id));
    if let Some(resolved) = resolved {
        query = query.filter(Column::Resolved.eq(resolved));
    }
    if let Some(after) = after {
        query = query.filter(
            Condition::any().add(Column::CreatedAt.lt(after.ts)).add(
                Condition::all()
                    .add(Column::CreatedAt.eq(after.ts))
                    .add(Column::Id.lt(after.id.as_str())),
            ),
        );
    }
    let mut rows = query
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}

/// How many problems the list holds, all pages together.
pub async fn count(
    db: &impl ConnectionTrait,
    org_id: &str,
    resolved: Option<bool>,
) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    let mut query = problem::Entity::find().filter(Column::OrgId.eq(org_id));
    if let Some(resolved) = resolved {
        query = query.filter(Column::Resolved.eq(resolved));
    }
    Ok(query.count(db).await?)
}
