//! Executing a plan: arguments read as the executor reads them, the pages
//! and their relations fetched, then the answer written in one pass.
//! `None` anywhere means "let the general executor answer".

use std::collections::HashMap;

use async_graphql::{InputType, Variables, ID};
use async_graphql_value::{ConstValue, Value};
use sea_orm::{DatabaseConnection, QueryResult};

use super::same;
use super::write::Out;
use super::{
    Condition, Connection, ConnectionField, EdgeField, EventField, Kind, Org, OrgField,
    PageInfoField, Plan, Relation, RelationField, RootField, Selected,
};
use crate::auth::Principal;
use crate::domain::feed::{ActivityFilter, Cursor, CursorKey, Scope};
use crate::graphql::activity::{page_limit, ActivityFilterInput};
use crate::operations::{graphql_access, Access};
use crate::service::secrets::CursorKeys;
use crate::service::{activity, directory};

/// What a plan reads from: the request's caller and the server's handles.
pub struct Context<'a> {
    pub db: &'a DatabaseConnection,
    pub summaries: crate::service::summary::Source<'a>,
    pub principal: &'a Principal,
    pub cursors: &'a CursorKeys,
}

impl Plan {
    /// The answer's bytes (`{"data":...}`), or `None` when the general
    /// executor must answer.
    pub async fn execute(&self, cx: &Context<'_>, variables: &Variables) -> Option<Vec<u8>> {
        // A viewer token's reads are confined and its fields restricted:
        // the general executor, whose guards and feeds know both, answers.
        if cx.principal.viewer_token.is_some() {
            return None;
        }
        let vars = Vars {
            plan: self,
            given: variables,
        };
        let mut orgs = Vec::new();
        for selected in &self.root {
            if let RootField::Org(org) = &selected.field {
                if vars.included(&selected.when)? {
                    orgs.push(fetch_org(cx, &vars, org).await?);
                }
            }
        }
        let mut orgs = orgs.iter();
        let mut out = Out::with_capacity(16 << 10);
        out.raw("{\"data\":");
        out.open();
        for selected in &self.root {
            if !vars.included(&selected.when)? {
                continue;
            }
            out.key(&selected.key);
            match &selected.field {
                RootField::Typename => out.string("QueryRoot"),
                RootField::Org(org) => write_org(&mut out, &vars, org, orgs.next()?)?,
            }
        }
        // With every root field skipped, `data` is null, which the
        // transport answers as a request error: the executor's to answer.
        if out.nothing_written() {
            return None;
        }
        out.close();
        out.raw("}");
        Some(out.into_bytes())
    }
}

/// The request's variables as the operation declares them.
struct Vars<'a> {
    plan: &'a Plan,
    given: &'a Variables,
}

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<ConstValue> {
        let declared = self.plan.variables.iter().find(|v| v.name == name)?;
        self.given
            .get(&declared.name)
            .or(declared.default.as_ref())
            .cloned()
    }

    /// `value` with its variables put in.
    fn resolve(&self, value: &Value) -> Option<ConstValue> {
        value
            .clone()
            .into_const_with(|name| self.get(&name).ok_or(()))
            .ok()
    }

    /// An argument read as its type reads it.
    fn argument<T: InputType>(&self, value: Option<&Value>) -> Option<T> {
        let value = match value {
            Some(value) => Some(self.resolve(value)?),
            None => None,
        };
        T::parse(value).ok()
    }

    fn included(&self, when: &[Condition]) -> Option<bool> {
        let mut included = true;
        for condition in when {
            let ConstValue::Boolean(holds) = self.resolve(&condition.value)? else {
                return None;
            };
            included &= holds == condition.include;
        }
        Some(included)
    }
}

/// Whether the caller holds what the operation registry declares for
/// `gate`; a refusal is the general executor's to answer.
fn allowed(principal: &Principal, gate: &str) -> bool {
    match graphql_access(gate) {
        Some(Access::Open) => true,
        Some(Access::Needs(permission)) => principal.permissions.contains(&permission),
        _ => false,
    }
}

/// What an org's selection read.
struct FetchedOrg {
    id: String,
    name: Option<String>,
    /// One per included connection, in selection order.
    pages: Vec<Page>,
}

struct Page {
    rows: Vec<QueryResult>,
    has_more: bool,
    has_previous: bool,
    total: Option<u64>,
    key: CursorKey,
    filter: ActivityFilter,
    related: Related,
}

async fn fetch_org(cx: &Context<'_>, vars: &Vars<'_>, org: &Org) -> Option<FetchedOrg> {
    if !allowed(cx.principal, "org") {
        return None;
    }
    let id: ID = vars.argument(Some(&org.id))?;
    // Another org's id is answered by the executor (RESOURCE_NOT_FOUND).
    // The caller's own exists while its credential does.
    if id.0 != cx.principal.org_id {
        return None;
    }
    let mut fetched = FetchedOrg {
        id: id.0,
        name: None,
        pages: Vec::new(),
    };
    for selected in &org.fields {
        if !vars.included(&selected.when)? {
            continue;
        }
        match &selected.field {
            OrgField::Name if fetched.name.is_none() => {
                let row = directory::org_of(cx.db, &cx.principal.org_id, &fetched.id).await;
                fetched.name = Some(row.ok()?.name);
            }
            OrgField::Activity(connection) => {
                if !allowed(cx.principal, "Org.activity") {
                    return None;
                }
                fetched.pages.push(fetch_page(cx, vars, connection).await?);
            }
            _ => {}
        }
    }
    Some(fetched)
}

async fn fetch_page(cx: &Context<'_>, vars: &Vars<'_>, connection: &Connection) -> Option<Page> {
    let first: Option<i32> = vars.argument(connection.first.as_ref())?;
    let after: Option<String> = vars.argument(connection.after.as_ref())?;
    let filter: Option<ActivityFilterInput> = vars.argument(connection.filter.as_ref())?;
    let org = &cx.principal.org_id;
    let key = cx.cursors.get().await.ok()?.clone();
    let mut problems = Vec::new();
    let limit = page_limit(first, &mut problems);
    let filter = ActivityFilterInput::read(filter, &mut problems);
    if !problems.is_empty() {
        return None;
    }
    let cursor = match &after {
        None => None,
        Some(text) => Some(Cursor::decode(text, &key, org, &Scope::Org, &filter).ok()?),
    };
    let page = activity::page_rows(
        cx.db,
        org,
        &Scope::Org,
        &filter,
        limit,
        cursor.as_ref(),
        &connection.columns,
    );
    let total = async {
        if connection.total_count {
            activity::count(cx.summaries, org, &Scope::Org, &filter)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let ((rows, has_more), total) = tokio::try_join!(page, total).ok()?;
    let related = Related::load(cx, connection, &rows).await?;
    Some(Page {
        rows,
        has_more,
        has_previous: cursor.is_some(),
        total,
        key,
        filter,
        related,
    })
}

/// The related rows of a page, by relation and id.
#[derive(Default)]
struct Related {
    users: HashMap<String, entity::user::Model>,
    workspaces: HashMap<String, entity::workspace::Model>,
    apps: HashMap<String, entity::app::Model>,
    endpoints: HashMap<String, entity::endpoint::Model>,
    augmentations: HashMap<String, entity::augmentation::Model>,
}

/// One related row, whatever its type.
enum RelatedRow<'a> {
    User(&'a entity::user::Model),
    Workspace(&'a entity::workspace::Model),
    App(&'a entity::app::Model),
    Endpoint(&'a entity::endpoint::Model),
    Augmentation(&'a entity::augmentation::Model),
}

impl Related {
    /// Every relation the page selects, one query each, at once: what the
    /// loaders' prefetch does for the general executor.
    async fn load(cx: &Context<'_>, connection: &Connection, rows: &[QueryResult]) -> Option<Self> {
        let mut related = Related::default();
        if rows.is_empty() || connection.relations.is_empty() {
            return Some(related);
        }
        for relation in &connection.relations {
            if !allowed(cx.principal, relation.gate()) {
                return None;
            }
        }
        let ids = |relation: Relation| -> Option<Vec<String>> {
            if !connection.relations.contains(&relation) {
                return Some(Vec::new());
            }
            let at = connection
                .columns
                .iter()
                .position(|c| same(*c, relation.column()))?
                + 2;
            let mut ids = std::collections::BTreeSet::new();
            for row in rows {
                if let Some(id) = row.try_get_by_index::<Option<String>>(at).ok()? {
                    ids.insert(id);
                }
            }
            Some(ids.into_iter().collect())
        };
        let (db, org) = (cx.db, cx.principal.org_id.as_str());
        let (users, workspaces, apps, endpoints, augmentations) = (
            ids(Relation::User)?,
            ids(Relation::Workspace)?,
            ids(Relation::App)?,
            ids(Relation::Endpoint)?,
            ids(Relation::Augmentation)?,
        );
        let (users, workspaces, apps, endpoints, augmentations) = tokio::try_join!(
            load_some(&users, directory::users_by_ids(db, org, &users)),
            load_some(
                &workspaces,
                directory::workspaces_by_ids(db, org, &workspaces)
            ),
            load_some(&apps, directory::apps_by_ids(db, org, &apps)),
            load_some(&endpoints, directory::endpoints_by_ids(db, org, &endpoints)),
            load_some(
                &augmentations,
                directory::augmentations_by_ids(db, org, &augmentations)
            ),
        )
        .ok()?;
        related.users = by_id(users, |r: &entity::user::Model| r.id.clone());
        related.workspaces = by_id(workspaces, |r: &entity::workspace::Model| r.id.clone());
        related.apps = by_id(apps, |r: &entity::app::Model| r.id.clone());
        related.endpoints = by_id(endpoints, |r: &entity::endpoint::Model| r.id.clone());
        related.augmentations = by_id(augmentations, |r: &entity::augmentation::Model| {
            r.id.clone()
        });
        Some(related)
    }

    fn get(&self, relation: Relation, id: &str) -> Option<RelatedRow<'_>> {
        Some(match relation {
            Relation::User => RelatedRow::User(self.users.get(id)?),
            Relation::Workspace => RelatedRow::Workspace(self.workspaces.get(id)?),
            Relation::App => RelatedRow::App(self.apps.get(id)?),
            Relation::Endpoint => RelatedRow::Endpoint(self.endpoints.get(id)?),
            Relation::Augmentation => RelatedRow::Augmentation(self.augmentations.get(id)?),
        })
    }
}

fn by_id<T>(rows: Vec<T>, id: fn(&T) -> String) -> HashMap<String, T> {
    rows.into_iter().map(|r| (id(&r), r)).collect()
}

/// The rows of `ids`, or none without a query when there are no ids.
async fn load_some<T>(
    ids: &[String],
    load: impl std::future::Future<Output = Result<Vec<T>, sea_orm::DbErr>>,
) -> Result<Vec<T>, sea_orm::DbErr> {
    if ids.is_empty() {
        Ok(Vec::new())
    } else {
        load.await
    }
}

fn write_org(out: &mut Out, vars: &Vars<'_>, org: &Org, fetched: &FetchedOrg) -> Option<()> {
    let mut pages = fetched.pages.iter();
    out.open();
    for selected in &org.fields {
        if !vars.included(&selected.when)? {
            continue;
        }
        out.key(&selected.key);
        match &selected.field {
            OrgField::Typename => out.string("Org"),
            OrgField::Id => out.string(&fetched.id),
            OrgField::Name => out.string(fetched.name.as_deref()?),
            OrgField::Activity(connection) => {
                write_connection(out, vars, &fetched.id, connection, pages.next()?)?
            }
        }
    }
    out.close();
    Some(())
}

fn write_connection(
    out: &mut Out,
    vars: &Vars<'_>,
    org: &str,
    connection: &Connection,
    page: &Page,
) -> Option<()> {
    let seal = |row: &QueryResult| -> Option<String> {
        let cursor = Cursor {
            ts: row.try_get_by_index(0).ok()?,
            id: row.try_get_by_index(1).ok()?,
        };
        Some(cursor.encode(&page.key, org, &Scope::Org, &page.filter))
    };
    out.open();
    for selected in &connection.fields {
        if !vars.included(&selected.when)? {
            continue;
        }
        out.key(&selected.key);
        match &selected.field {
            ConnectionField::Typename => out.string("ActivityConnection"),
            ConnectionField::TotalCount => out.number(page.total?),
            ConnectionField::PageInfo(fields) => {
                out.open();
                for selected in fields {
                    if !vars.included(&selected.when)? {
                        continue;
                    }
                    out.key(&selected.key);
                    match selected.field {
                        PageInfoField::Typename => out.string("PageInfo"),
                        PageInfoField::HasPreviousPage => out.bool(page.has_previous),
                        PageInfoField::HasNextPage => out.bool(page.has_more),
                        PageInfoField::StartCursor => match page.rows.first() {
                            Some(row) => out.string(&seal(row)?),
                            None => out.null(),
                        },
                        PageInfoField::EndCursor => match page.rows.last() {
                            Some(row) => out.string(&seal(row)?),
                            None => out.null(),
                        },
                    }
                }
                out.close();
            }
            ConnectionField::Nodes(fields) => {
                out.open_list();
                for row in &page.rows {
                    out.item();
                    write_event(out, vars, fields, row, &page.related)?;
                }
                out.close_list();
            }
            ConnectionField::Edges(fields) => {
                out.open_list();
                for row in &page.rows {
                    out.item();
                    out.open();
                    for selected in fields {
                        if !vars.included(&selected.when)? {
                            continue;
                        }
                        out.key(&selected.key);
                        match &selected.field {
                            EdgeField::Typename => out.string("ActivityEdge"),
                            EdgeField::Cursor => out.string(&seal(row)?),
                            EdgeField::Node(fields) => {
                                write_event(out, vars, fields, row, &page.related)?
                            }
                        }
                    }
                    out.close();
                }
                out.close_list();
            }
        }
    }
    out.close();
    Some(())
}

fn write_event(
    out: &mut Out,
    vars: &Vars<'_>,
    fields: &[Selected<EventField>],
    row: &QueryResult,
    related: &Related,
) -> Option<()> {
    out.open();
    for selected in fields {
        if !vars.included(&selected.when)? {
            continue;
        }
        out.key(&selected.key);
        match &selected.field {
            EventField::Typename => out.string("Activity"),
            EventField::Column(at, kind) => write_column(out, row, *at, *kind)?,
            EventField::Relation(relation, at, fields) => {
                let id: Option<String> = row.try_get_by_index(*at).ok()?;
                match id.as_deref().and_then(|id| related.get(*relation, id)) {
                    None => out.null(),
                    Some(related) => {
                        out.open();
                        for selected in fields {
                            if !vars.included(&selected.when)? {
                                continue;
                            }
                            out.key(&selected.key);
                            match selected.field {
                                RelationField::Typename => out.string(relation.type_name()),
                                RelationField::Plain(name) => write_related(out, &related, name)?,
                            }
                        }
                        out.close();
                    }
                }
            }
        }
    }
    out.close();
    Some(())
}

fn write_column(out: &mut Out, row: &QueryResult, at: usize, kind: Kind) -> Option<()> {
    match kind {
        Kind::Text => out.string(activity::text_at(row, at)??),
        Kind::OptionalText => match activity::text_at(row, at)? {
            Some(text) => out.string(text),
            None => out.null(),
        },
        Kind::Timestamp => out.string(&crate::domain::time::format_micros(
            row.try_get_by_index(at).ok()?,
        )),
        Kind::Int => out.number(row.try_get_by_index::<i32>(at).ok()?),
        Kind::OptionalInt => match row.try_get_by_index::<Option<i32>>(at).ok()? {
            Some(n) => out.number(n),
            None => out.null(),
        },
        Kind::BigInt => out.number(row.try_get_by_index::<i64>(at).ok()?),
        Kind::Bool => out.bool(row.try_get_by_index(at).ok()?),
        Kind::Json => out.stored_json(activity::text_at(row, at)??),
        Kind::LogIndex => {
            let index: Option<i64> = row.try_get_by_index(at).ok()?;
            out.number(index.unwrap_or(-1))
        }
    }
    Some(())
}

fn write_related(out: &mut Out, row: &RelatedRow<'_>, name: &str) -> Option<()> {
    match (row, name) {
        (RelatedRow::User(u), "id") => out.string(&u.id),
        (RelatedRow::User(u), "email") => out.string(&u.email),
        (RelatedRow::User(u), "name") => out.string(&u.name),
        (RelatedRow::User(u), "role") => out.string(&u.role),
        (RelatedRow::Workspace(w), "id") => out.string(&w.id),
        (RelatedRow::Workspace(w), "name") => out.string(&w.name),
        (RelatedRow::App(a), "id") => out.string(&a.id),
        (RelatedRow::App(a), "name") => out.string(&a.name),
        (RelatedRow::App(a), "workspaceId") => out.string(&a.workspace_id),
        (RelatedRow::Endpoint(e), "id") => out.string(&e.id),
        (RelatedRow::Endpoint(e), "name") => out.string(&e.name),
        (RelatedRow::Endpoint(e), "method") => out.string(&e.method),
        (RelatedRow::Endpoint(e), "path") => out.string(&e.path),
        (RelatedRow::Endpoint(e), "appId") => out.string(&e.app_id),
        (RelatedRow::Augmentation(a), "id") => out.string(&a.id),
        (RelatedRow::Augmentation(a), "name") => out.string(&a.name),
        (RelatedRow::Augmentation(a), "totalStages") => out.number(a.total_stages),
        _ => return None,
    }
    Some(())
}
