//! GraphQL node types. They wrap service results; entities never derive
//! GraphQL traits, so the API does not change when a table does. Every level
//! of the hierarchy has the same `activity` and `activitySummary` fields.

mod hierarchy;
mod org;
mod people;

pub use hierarchy::{App, Augmentation, Endpoint, Workspace};
pub use org::{Department, Export, Org, Retention};
pub use people::{User, Viewer};

use crate::graphql::error::ToGraphql;
use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Interface, ID};
use sea_orm::DatabaseConnection;

use crate::auth::Principal;
use crate::domain::error::{AppError, AppResult};
use crate::domain::feed::Cursor;
use crate::domain::paging::PageSize;
use crate::graphql::activity::{cursor_key, page_limit, Activity};
use crate::graphql::error::{GqlResult, IntoGql};
use crate::service::directory;
use crate::views::SessionListItem;

use crate::graphql::sessions::Problem;

/// Anything with a global id; `node(id:)` resolves every one.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Org(Org),
    Workspace(Workspace),
    App(App),
    Endpoint(Endpoint),
    Augmentation(Augmentation),
    User(User),
    Activity(Activity),
    Problem(Problem),
    Session(SessionListItem),
    Department(Department),
    Export(Export),
}

impl From<directory::Node> for Node {
    fn from(n: directory::Node) -> Self {
        match n {
            directory::Node::Org(m) => Node::Org(Org(m)),
            directory::Node::Workspace(m) => Node::Workspace(Workspace(m)),
            directory::Node::App(m) => Node::App(App(m)),
            directory::Node::Endpoint(m) => Node::Endpoint(Endpoint(m)),
            directory::Node::Augmentation(m) => Node::Augmentation(Augmentation(m)),
            directory::Node::User(m) => Node::User(User(m)),
            directory::Node::Activity(m) => Node::Activity(Activity::from(m)),
            directory::Node::Problem(m) => Node::Problem(Problem(m)),
            directory::Node::Session(s) => Node::Session(SessionListItem::from(s)),
            directory::Node::Department(m) => Node::Department(Department(m)),
            directory::Node::Export(m) => Node::Export(Export(m)),
        }
    }
}

pub(super) type Children<T> = Connection<String, T, EmptyFields, EmptyFields>;

/// Every connection page (feeds, children, sessions, problems) costs its rows
/// times what each row selects, so the complexity limit sees 60 aliased pages
/// of 200, or a fan-out of children, for what they are.
pub(super) fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    (first.map_or(PageSize::DEFAULT, |n| {
        n.clamp(1, PageSize::MAX as i32) as u64
    }) as usize)
        .saturating_mul(child_complexity)
}

/// A summary is a few aggregate queries whatever it selects.
pub(super) const SUMMARY_COST: usize = 10;

/// A page of children in id order. The cursor is the last id seen, sealed
/// to its list (`list` names the kind of child and the parent) like every
/// other cursor.
pub(super) async fn children<M, T>(
    ctx: &Context<'_>,
    list: String,
    first: Option<i32>,
    after: Option<String>,
    fetch: impl AsyncFnOnce(&DatabaseConnection, &str, Option<&str>, u64) -> AppResult<(Vec<M>, bool)>,
    id_of: impl Fn(&M) -> String,
    wrap: impl Fn(M) -> T,
) -> GqlResult<Children<T>>
where
    T: async_graphql::OutputType,
{
    let org = &ctx.data::<Principal>()?.org_id;
    let key = cursor_key(ctx).await?;
    let mut problems = Vec::new();
    let limit = page_limit(first, &mut problems);
    let after = after.and_then(|text| {
        Cursor::decode_for_list(&text, key, org, &list)
            .map_err(|e| problems.push(e.to_input(&["after"], &text)))
            .ok()
    });
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems).to_graphql());
    }
    let db = ctx.data::<DatabaseConnection>()?;
    let (rows, has_more) = fetch(db, org, after.as_ref().map(|c| c.id.as_str()), limit)
        .await
        .gql()?;
    let mut connection = Connection::new(after.is_some(), has_more);
    connection.edges.extend(rows.into_iter().map(|m| {
        let cursor = Cursor {
            ts: 0,
            id: id_of(&m),
        }
        .encode_for_list(key, org, &list);
        Edge::new(cursor, wrap(m))
    }));
    Ok(connection)
}
