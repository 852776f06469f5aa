//! Routes under `/v1/orgs/{org_id}` (reference `000_0fcf25ac362c8c00.txt`).
//! The org in the path must be the caller's own; any other answers exactly
//! like an org that does not exist.

use axum::extract::{OriginalUri, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};

use crate::auth::Principal;
use crate::domain::error::AppError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    super::activity::router()
        .merge(super::log::router())
        .merge(super::viewer_tokens::router())
        .fallback(|OriginalUri(uri): OriginalUri| async move {
            AppError::not_found("route", uri.path())
        })
        .layer(middleware::from_fn(own_org_only))
        .layer(middleware::from_fn(crate::recording::publish_route))
}

async fn own_org_only(
    Extension(principal): Extension<Principal>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    // Read from the original URI (nesting strips the prefix) so unknown
    // sub-paths, which match no route and have no path parameters, are guarded too.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let org_id = path
        .trim_start_matches("/v1/orgs/")
        .split('/')
        .next()
        .unwrap_or_default();
    if org_id != principal.org_id {
        return Err(AppError::not_found("org", org_id));
    }
    Ok(next.run(req).await)
}
