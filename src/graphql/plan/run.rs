//! Executing a plan: arguments read as the executor reads them, the pages
//! and their relations fetched, then the answer written in one pass.
//! `None` anywhere means "let the general executor answer".

use async_graphql::{InputType, Variables, ID};
use async_graphql_value::{ConstValue, Value};
use sea_orm::{DatabaseConnection, QueryResult};

use super::{
    Condition, Connection, ConnectionField, EdgeField, EventField, Org, OrgField, PageInfoField,
    Plan, RelationField, RootField, Selected,
};
use crate::auth::Principal;
use crate::domain::feed::{ActivityFilter, Cursor, CursorKey, Scope};
use crate::graphql::activity::{page_limit, ActivityFilterInput};
use crate::json::Out;
use crate::operations::{graphql_access, Access};
use crate::service::activity::{self, PageQuery, Related};
use crate::service::directory;
use crate::service::secrets::CursorKeys;

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
        // About a kilobyte per event with every field selected: sized once,
        // the buffer is never copied while it grows.
        let rows: usize = orgs
            .iter()
            .flat_map(|org| &org.pages)
            .map(|page| page.rows.len())
            .sum();
        let mut orgs = orgs.iter();
        let mut out = Out::with_capacity(1024 + rows * 1024);
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

    /// An object of the `fields` whose conditions hold, each under its key,
    /// its value written by `write`.
    fn object<T>(
        &self,
        out: &mut Out,
        fields: &[Selected<T>],
        mut write: impl FnMut(&mut Out, &T) -> Option<()>,
    ) -> Option<()> {
        out.open();
        for selected in fields {
            if !self.included(&selected.when)? {
                continue;
            }
            out.key(&selected.key);
            write(out, &selected.field)?;
        }
        out.close();
        Some(())
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
    // Relations are read in the page's statement, behind their guards. A
    // refused one is an error on each row that selects it (the executor's
    // to answer), and on none when there are no rows.
    let permitted = connection
        .relations
        .iter()
        .all(|relation| allowed(cx.principal, relation.gate()));
    let related: &[Related] = if permitted {
        &connection.relations
    } else {
        &[]
    };
    let page = PageQuery {
        org_id: org,
        scope: &Scope::Org,
        filter: &filter,
        limit,
        cursor: cursor.as_ref(),
        columns: &connection.columns,
        related,
    };
    let (rows, has_more, total) = if connection.total_count {
        let (rows, has_more, total) = activity::page_rows_and_count(cx.summaries, &page)
            .await
            .ok()?;
        (rows, has_more, Some(total))
    } else {
        let (rows, has_more) = activity::page_rows(cx.db, &page).await.ok()?;
        (rows, has_more, None)
    };
    if !permitted && !rows.is_empty() {
        return None;
    }
    Some(Page {
        rows,
        has_more,
        has_previous: cursor.is_some(),
        total,
        key,
        filter,
    })
}

fn write_org(out: &mut Out, vars: &Vars<'_>, org: &Org, fetched: &FetchedOrg) -> Option<()> {
    let mut pages = fetched.pages.iter();
    vars.object(out, &org.fields, |out, field| {
        match field {
            OrgField::Typename => out.string("Org"),
            OrgField::Id => out.string(&fetched.id),
            OrgField::Name => out.string(fetched.name.as_deref()?),
            OrgField::Activity(connection) => {
                write_connection(out, vars, &fetched.id, connection, pages.next()?)?
            }
        }
        Some(())
    })
}

fn write_connection(
    out: &mut Out,
    vars: &Vars<'_>,
    org: &str,
    connection: &Connection,
    page: &Page,
) -> Option<()> {
    let seal = |row: &QueryResult| -> Option<String> {
        let cursor = activity::cursor_of(row).ok()?;
        Some(cursor.encode(&page.key, org, &Scope::Org, &page.filter))
    };
    vars.object(out, &connection.fields, |out, field| {
        match field {
            ConnectionField::Typename => out.string("ActivityConnection"),
            ConnectionField::TotalCount => out.number(page.total?),
            ConnectionField::PageInfo(fields) => vars.object(out, fields, |out, field| {
                match field {
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
                Some(())
            })?,
            ConnectionField::Nodes(fields) => {
                out.open_list();
                for row in &page.rows {
                    out.item();
                    write_event(out, vars, fields, row, connection)?;
                }
                out.close_list();
            }
            ConnectionField::Edges(fields) => {
                out.open_list();
                for row in &page.rows {
                    out.item();
                    vars.object(out, fields, |out, field| {
                        match field {
                            EdgeField::Typename => out.string("ActivityEdge"),
                            EdgeField::Cursor => out.string(&seal(row)?),
                            EdgeField::Node(fields) => {
                                write_event(out, vars, fields, row, connection)?
                            }
                        }
                        Some(())
                    })?;
                }
                out.close_list();
            }
        }
        Some(())
    })
}

fn write_event(
    out: &mut Out,
    vars: &Vars<'_>,
    fields: &[Selected<EventField>],
    row: &QueryResult,
    connection: &Connection,
) -> Option<()> {
    vars.object(out, fields, |out, field| {
        match field {
            EventField::Typename => out.string("Activity"),
            EventField::Column(at, kind) => out.column(row, *at, *kind)?,
            EventField::Relation(relation, fields) => {
                let start = connection.relation_at(*relation)?;
                // The related row's id is null when there is no such row.
                if activity::text_at(row, start)?.is_none() {
                    out.null();
                    return Some(());
                }
                vars.object(out, fields, |out, field| {
                    match *field {
                        RelationField::Typename => out.string(relation.type_name()),
                        RelationField::Column(at, kind) => out.column(row, start + at, kind)?,
                    }
                    Some(())
                })?
            }
        }
        Some(())
    })
}
