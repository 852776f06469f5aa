//! Planned reads: the feed pages of `org(id:) { activity(...) }` answered
//! without a resolver per field.
//!
//! A kept document whose one query reads an org's activity connections
//! (plain fields of events, their relations' plain fields, cursors, page
//! info, `totalCount`, `__typename`, through fragments and `@skip` /
//! `@include`) is planned once: which columns a page reads, which relations
//! it loads, and which fields it writes, under which keys, in which order.
//! Executing the plan reads rows by column index and writes the answer's
//! JSON straight into one buffer: no future, map entry or value per field,
//! and no tree of values to serialise or put in order.
//!
//! A plan answers only what it is sure of. It is used only once the general
//! executor has run the same document (so the document is valid: the plan
//! need not repeat async-graphql's validation), and whatever it does not
//! cover falls back to the general executor, which answers as it always
//! did: a variable it cannot read, a permission refused, a bad argument or
//! cursor, an error of the database. So every error is the executor's own.

mod build;
mod run;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Name;
use async_graphql_value::Value;

use crate::json::Kind;
use crate::service::activity::Related;
use crate::telemetry::OperationLabel;

pub use run::Context;

/// What a kept document's operation reads and writes (see the module).
pub struct Plan {
    /// The operation's name, when it has one: a request naming another
    /// operation is not this plan's.
    operation: Option<Name>,
    variables: Vec<Variable>,
    root: Vec<Selected<RootField>>,
    /// What ran, for `/metrics`, as the general path labels it.
    pub label: OperationLabel,
}

impl Plan {
    /// The plan of `document`, when all of its one operation is plannable.
    pub fn of(document: &ExecutableDocument) -> Option<Plan> {
        build::plan(document)
    }

    /// Whether a request naming `operation_name` runs this plan's operation.
    pub fn runs(&self, operation_name: Option<&str>) -> bool {
        match operation_name {
            None => true,
            Some(name) => self.operation.as_deref() == Some(name),
        }
    }
}

/// Whether two columns are the same (SeaORM's columns have no `PartialEq`).
fn same(a: entity::activity_event::Column, b: entity::activity_event::Column) -> bool {
    std::mem::discriminant(&a) == std::mem::discriminant(&b)
}

/// A declared variable: its value is the request's, else its default (null
/// for a nullable type), as async-graphql reads it.
struct Variable {
    name: Name,
    default: Option<async_graphql_value::ConstValue>,
}

/// A field under its response key, written only when its conditions hold.
struct Selected<T> {
    key: Name,
    when: Vec<Condition>,
    field: T,
}

/// `@skip(if:)` (`include: false`) or `@include(if:)` (`include: true`).
#[derive(Clone, PartialEq)]
struct Condition {
    include: bool,
    value: Value,
}

enum RootField {
    Typename,
    Org(Org),
}

struct Org {
    id: Value,
    fields: Vec<Selected<OrgField>>,
}

enum OrgField {
    Typename,
    Id,
    Name,
    Activity(Box<Connection>),
}

/// One `activity` connection: its arguments as written, what it writes, and
/// what its page must read for that.
struct Connection {
    first: Option<Value>,
    after: Option<Value>,
    filter: Option<Value>,
    fields: Vec<Selected<ConnectionField>>,
    /// Read after `ts` and `id`, at row index 2, 3, ...
    columns: Vec<entity::activity_event::Column>,
    /// Read beside each event, after `columns`, in this order.
    relations: Vec<Related>,
    edge_cursors: bool,
    total_count: bool,
}

impl Connection {
    /// Where `relation`'s columns start in the page's rows: after `ts`,
    /// `id` and `columns`, and the relations read before it.
    fn relation_at(&self, relation: Related) -> Option<usize> {
        let before = self.relations.iter().position(|r| *r == relation)?;
        let earlier: usize = self.relations[..before]
            .iter()
            .map(|r| r.columns().len())
            .sum();
        Some(2 + self.columns.len() + earlier)
    }
}

enum ConnectionField {
    Typename,
    TotalCount,
    PageInfo(Vec<Selected<PageInfoField>>),
    Nodes(Vec<Selected<EventField>>),
    Edges(Vec<Selected<EdgeField>>),
}

enum PageInfoField {
    Typename,
    HasPreviousPage,
    HasNextPage,
    StartCursor,
    EndCursor,
}

enum EdgeField {
    Typename,
    Cursor,
    Node(Vec<Selected<EventField>>),
}

enum EventField {
    Typename,
    /// A column of the row, at this index, written as this kind.
    Column(usize, Kind),
    /// A relation, read in the page's own statement, and the fields written
    /// of it.
    Relation(Related, Vec<Selected<RelationField>>),
}

enum RelationField {
    Typename,
    /// A plain field of the related row: its column among
    /// [`Related::columns`], written as this kind.
    Column(usize, Kind),
}
