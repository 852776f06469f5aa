//! Planning: a document's operation turned into a [`Plan`], or nothing when
//! any part of it is not plannable.

use async_graphql::parser::types::{
    Directive, ExecutableDocument, Field, OperationType, Selection, SelectionSet, TypeCondition,
};
use async_graphql::{Name, Positioned};
use async_graphql_value::Value;

use entity::activity_event::Column;

use super::same;
use super::{
    Condition, Connection, ConnectionField, EdgeField, EventField, Kind, Org, OrgField,
    PageInfoField, Plan, Related, RelationField, RootField, Selected, Variable,
};
use crate::domain::paging::PageSize;
use crate::graphql::documents::RECURSION_DEPTH;
use crate::graphql::MAX_COMPLEXITY;
use crate::telemetry::OperationLabel;

pub(super) fn plan(document: &ExecutableDocument) -> Option<Plan> {
    let mut operations = document.operations.iter();
    let (name, operation) = operations.next()?;
    if operations.next().is_some() || operation.node.ty != OperationType::Query {
        return None;
    }
    let operation = &operation.node;
    if !operation.directives.is_empty() {
        return None;
    }
    let variables = operation
        .variable_definitions
        .iter()
        .map(|definition| Variable {
            name: definition.node.name.node.clone(),
            default: definition.node.default_value().cloned(),
        })
        .collect();
    let planner = Planner { document };
    let mut root = Vec::new();
    for collected in planner.collect(&operation.selection_set.node, "QueryRoot")? {
        let field = match collected.name() {
            "__typename" => RootField::Typename,
            "org" => RootField::Org(planner.org(&collected)?),
            _ => return None,
        };
        root.push(collected.selected(field));
    }
    // A page of 200 rows must stay within the complexity limit whatever
    // `first` a variable gives, so the plan never answers what the general
    // executor would refuse as too complex.
    if complexity(&root) > MAX_COMPLEXITY {
        return None;
    }
    let (kind, field) = crate::graphql::ordering::label(operation);
    Some(Plan {
        operation: name.cloned(),
        variables,
        root,
        label: OperationLabel {
            kind,
            field,
            name: name.map(|n| n.to_string()),
        },
    })
}

/// The fields selected under one response key (several when fragments
/// select it again), with the conditions that decide whether it is written.
struct Collected<'a> {
    key: Name,
    fields: Vec<&'a Field>,
    when: Vec<Condition>,
}

impl<'a> Collected<'a> {
    fn name(&self) -> &str {
        self.fields[0].name.node.as_str()
    }

    fn first(&self) -> &'a Field {
        self.fields[0]
    }

    fn selected<T>(&self, field: T) -> Selected<T> {
        Selected {
            key: self.key.clone(),
            when: self.when.clone(),
            field,
        }
    }

    /// A leaf: no arguments, no selection.
    fn is_leaf(&self) -> bool {
        self.fields
            .iter()
            .all(|f| f.arguments.is_empty() && f.selection_set.node.items.is_empty())
    }

    fn argument(&self, name: &str) -> Option<Value> {
        self.first().get_argument(name).map(|v| v.node.clone())
    }

    /// Only these arguments.
    fn arguments_within(&self, names: &[&str]) -> bool {
        self.first()
            .arguments
            .iter()
            .all(|(name, _)| names.contains(&name.node.as_str()))
    }
}

struct Planner<'a> {
    document: &'a ExecutableDocument,
}

impl<'a> Planner<'a> {
    /// The fields of `set` on `type_name`, by response key in selection
    /// order through fragments, as GraphQL collects them. A key selected
    /// twice merges only when both are the same field with the same
    /// arguments and neither has a condition; anything else is not planned.
    fn collect(&self, set: &'a SelectionSet, type_name: &str) -> Option<Vec<Collected<'a>>> {
        let mut out = Vec::new();
        self.collect_into(set, type_name, &[], &mut out, 0)?;
        Some(out)
    }

    fn collect_into(
        &self,
        set: &'a SelectionSet,
        type_name: &str,
        outer: &[Condition],
        out: &mut Vec<Collected<'a>>,
        depth: usize,
    ) -> Option<()> {
        if depth > RECURSION_DEPTH {
            return None;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let when = conditions(outer, &field.directives)?;
                    let key = field.response_key().node.clone();
                    match out.iter_mut().find(|c| c.key == key) {
                        Some(seen) => {
                            let same = seen.first().name.node == field.name.node
                                && seen.first().arguments == field.arguments
                                && seen.when.is_empty()
                                && when.is_empty();
                            if !same {
                                return None;
                            }
                            seen.fields.push(field);
                        }
                        None => out.push(Collected {
                            key,
                            fields: vec![field],
                            when,
                        }),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let fragment = &self
                        .document
                        .fragments
                        .get(&spread.fragment_name.node)?
                        .node;
                    if !fragment.directives.is_empty()
                        || !applies(&fragment.type_condition.node, type_name)
                    {
                        return None;
                    }
                    let when = conditions(outer, &spread.directives)?;
                    let set = &fragment.selection_set.node;
                    self.collect_into(set, type_name, &when, out, depth + 1)?;
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    if let Some(condition) = &inline.type_condition {
                        if !applies(&condition.node, type_name) {
                            return None;
                        }
                    }
                    let when = conditions(outer, &inline.directives)?;
                    let set = &inline.selection_set.node;
                    self.collect_into(set, type_name, &when, out, depth + 1)?;
                }
            }
        }
        Some(())
    }

    /// The selections of every field under one key, together.
    fn collect_under(
        &self,
        collected: &Collected<'a>,
        type_name: &str,
    ) -> Option<Vec<Collected<'a>>> {
        let mut out = Vec::new();
        for field in &collected.fields {
            self.collect_into(&field.selection_set.node, type_name, &[], &mut out, 0)?;
        }
        Some(out)
    }

    fn org(&self, collected: &Collected<'a>) -> Option<Org> {
        if !collected.arguments_within(&["id"]) {
            return None;
        }
        let id = collected.argument("id")?;
        let mut fields = Vec::new();
        for field in self.collect_under(collected, "Org")? {
            let planned = match field.name() {
                "__typename" if field.is_leaf() => OrgField::Typename,
                "id" if field.is_leaf() => OrgField::Id,
                "name" if field.is_leaf() => OrgField::Name,
                "activity" => OrgField::Activity(Box::new(self.connection(&field)?)),
                _ => return None,
            };
            fields.push(field.selected(planned));
        }
        Some(Org { id, fields })
    }

    fn connection(&self, collected: &Collected<'a>) -> Option<Connection> {
        if !collected.arguments_within(&["first", "after", "filter"]) {
            return None;
        }
        let mut connection = Connection {
            first: collected.argument("first"),
            after: collected.argument("after"),
            filter: collected.argument("filter"),
            fields: Vec::new(),
            columns: Vec::new(),
            relations: Vec::new(),
            edge_cursors: false,
            total_count: false,
        };
        for field in self.collect_under(collected, "ActivityConnection")? {
            let planned = match field.name() {
                "__typename" if field.is_leaf() => ConnectionField::Typename,
                "totalCount" if field.is_leaf() => {
                    connection.total_count = true;
                    ConnectionField::TotalCount
                }
                "pageInfo" => ConnectionField::PageInfo(self.page_info(&field)?),
                "nodes" if field.arguments_within(&[]) => {
                    ConnectionField::Nodes(self.event(&field, &mut connection)?)
                }
                "edges" if field.arguments_within(&[]) => {
                    ConnectionField::Edges(self.edges(&field, &mut connection)?)
                }
                _ => return None,
            };
            connection.fields.push(field.selected(planned));
        }
        Some(connection)
    }

    fn page_info(&self, collected: &Collected<'a>) -> Option<Vec<Selected<PageInfoField>>> {
        if !collected.arguments_within(&[]) {
            return None;
        }
        let mut fields = Vec::new();
        for field in self.collect_under(collected, "PageInfo")? {
            if !field.is_leaf() {
                return None;
            }
            let planned = match field.name() {
                "__typename" => PageInfoField::Typename,
                "hasPreviousPage" => PageInfoField::HasPreviousPage,
                "hasNextPage" => PageInfoField::HasNextPage,
                "startCursor" => PageInfoField::StartCursor,
                "endCursor" => PageInfoField::EndCursor,
                _ => return None,
            };
            fields.push(field.selected(planned));
        }
        Some(fields)
    }

    fn edges(
        &self,
        collected: &Collected<'a>,
        connection: &mut Connection,
    ) -> Option<Vec<Selected<EdgeField>>> {
        let mut fields = Vec::new();
        for field in self.collect_under(collected, "ActivityEdge")? {
            let planned = match field.name() {
                "__typename" if field.is_leaf() => EdgeField::Typename,
                "cursor" if field.is_leaf() => {
                    connection.edge_cursors = true;
                    EdgeField::Cursor
                }
                "node" if field.arguments_within(&[]) => {
                    EdgeField::Node(self.event(&field, connection)?)
                }
                _ => return None,
            };
            fields.push(field.selected(planned));
        }
        Some(fields)
    }

    fn event(
        &self,
        collected: &Collected<'a>,
        connection: &mut Connection,
    ) -> Option<Vec<Selected<EventField>>> {
        let mut fields = Vec::new();
        for field in self.collect_under(collected, "Activity")? {
            let planned = if let Some(relation) = relation(field.name()) {
                if !field.arguments_within(&[]) {
                    return None;
                }
                if !connection.relations.contains(&relation) {
                    connection.relations.push(relation);
                }
                EventField::Relation(relation, self.related(&field, relation)?)
            } else if field.name() == "__typename" && field.is_leaf() {
                EventField::Typename
            } else {
                let (column, kind) = event_column(field.name()).filter(|_| field.is_leaf())?;
                let at = match column {
                    Column::Ts => 0,
                    Column::Id => 1,
                    column => column_at(connection, column),
                };
                EventField::Column(at, kind)
            };
            fields.push(field.selected(planned));
        }
        Some(fields)
    }

    fn related(
        &self,
        collected: &Collected<'a>,
        relation: Related,
    ) -> Option<Vec<Selected<RelationField>>> {
        let mut fields = Vec::new();
        for field in self.collect_under(collected, relation.type_name())? {
            if !field.is_leaf() {
                return None;
            }
            let planned = match field.name() {
                "__typename" => RelationField::Typename,
                name => {
                    let (at, kind) = relation.plain_field(name)?;
                    RelationField::Column(at, kind)
                }
            };
            fields.push(field.selected(planned));
        }
        Some(fields)
    }
}

/// Where `column` is in the page's rows, added to what the page reads when
/// it is not there yet.
fn column_at(connection: &mut Connection, column: Column) -> usize {
    let found = connection.columns.iter().position(|c| same(*c, column));
    let index = found.unwrap_or_else(|| {
        connection.columns.push(column);
        connection.columns.len() - 1
    });
    index + 2
}

/// The conditions `outer` (of the fragments around) and `directives` set;
/// nothing when a directive is not `@skip` or `@include`.
fn conditions(outer: &[Condition], directives: &[Positioned<Directive>]) -> Option<Vec<Condition>> {
    let mut when = outer.to_vec();
    for directive in directives {
        let directive = &directive.node;
        let include = match directive.name.node.as_str() {
            "skip" => false,
            "include" => true,
            _ => return None,
        };
        if directive.arguments.len() != 1 {
            return None;
        }
        let value = directive.get_argument("if")?.node.clone();
        when.push(Condition { include, value });
    }
    Some(when)
}

/// Whether a fragment on `condition` applies to an object of `type_name`:
/// the type itself, or the `Node` interface of the types that have ids.
fn applies(condition: &TypeCondition, type_name: &str) -> bool {
    let on = condition.on.node.as_str();
    on == type_name
        || (on == "Node"
            && matches!(
                type_name,
                "Org" | "Activity" | "User" | "Workspace" | "App" | "Endpoint" | "Augmentation"
            ))
}

/// The column and kind of a plain field of `Activity`.
fn event_column(name: &str) -> Option<(Column, Kind)> {
    use Kind::*;
    Some(match name {
        "id" => (Column::Id, Text),
        "timestamp" => (Column::Ts, Timestamp),
        "traceId" => (Column::TraceId, OptionalText),
        "userId" => (Column::UserId, OptionalText),
        "workspaceId" => (Column::WorkspaceId, OptionalText),
        "appId" => (Column::AppId, OptionalText),
        "endpointId" => (Column::EndpointId, OptionalText),
        "augmentationId" => (Column::AugmentationId, OptionalText),
        "principalType" => (Column::PrincipalType, OptionalText),
        "principalId" => (Column::PrincipalId, OptionalText),
        "tokenId" => (Column::TokenId, OptionalText),
        "tokenType" => (Column::TokenType, OptionalText),
        "method" => (Column::Method, OptionalText),
        "path" => (Column::Path, OptionalText),
        "resourceType" => (Column::ResourceType, OptionalText),
        "resourceId" => (Column::ResourceId, OptionalText),
        "action" => (Column::Action, Text),
        "statusCode" => (Column::StatusCode, Int),
        "success" => (Column::Success, Bool),
        "errorCode" => (Column::ErrorCode, OptionalText),
        "durationMs" => (Column::DurationMs, BigInt),
        "executionId" => (Column::ExecutionId, OptionalText),
        "stagesCompleted" => (Column::StagesCompleted, OptionalInt),
        "totalStages" => (Column::TotalStages, OptionalInt),
        "tokenUsage" => (Column::TokenUsage, Json),
        "tokensTotal" => (Column::TokensTotal, BigInt),
        "metadata" => (Column::Metadata, Json),
        "logIndex" => (Column::LogIndex, LogIndex),
        _ => return None,
    })
}

fn relation(name: &str) -> Option<Related> {
    Some(match name {
        "user" => Related::User,
        "workspace" => Related::Workspace,
        "app" => Related::App,
        "endpoint" => Related::Endpoint,
        "augmentation" => Related::Augmentation,
        _ => return None,
    })
}

/// What GraphQL names of a relation (the service reads it).
impl Related {
    pub(super) fn type_name(self) -> &'static str {
        match self {
            Related::User => "User",
            Related::Workspace => "Workspace",
            Related::App => "App",
            Related::Endpoint => "Endpoint",
            Related::Augmentation => "Augmentation",
        }
    }

    /// The operation registry's name of the field, whose permission it needs.
    pub(super) fn gate(self) -> &'static str {
        match self {
            Related::User => "Activity.user",
            Related::Workspace => "Activity.workspace",
            Related::App => "Activity.app",
            Related::Endpoint => "Activity.endpoint",
            Related::Augmentation => "Activity.augmentation",
        }
    }

    /// A plain field of the related type (its connections and summaries
    /// are not planned): where it is among [`Related::columns`] (each the
    /// field's name in snake case), and how it is written.
    fn plain_field(self, name: &str) -> Option<(usize, Kind)> {
        let column = heck::ToSnakeCase::to_snake_case(name);
        let at = self.columns().iter().position(|c| *c == column)?;
        let kind = if name == "totalStages" {
            Kind::Int
        } else {
            Kind::Text
        };
        Some((at, kind))
    }
}

/// The complexity async-graphql computes for `root`, with every page at its
/// largest: a field costs one plus what it selects, a connection its page
/// size times what a row selects.
fn complexity(root: &[Selected<RootField>]) -> usize {
    let leaves = |n: usize| n;
    let relation = |fields: &[Selected<RelationField>]| 1 + leaves(fields.len());
    let event = |fields: &[Selected<EventField>]| -> usize {
        fields
            .iter()
            .map(|f| match &f.field {
                EventField::Relation(_, related) => relation(related),
                _ => 1,
            })
            .sum()
    };
    let connection = |c: &Connection| -> usize {
        let row: usize = c
            .fields
            .iter()
            .map(|f| match &f.field {
                ConnectionField::PageInfo(fields) => 1 + fields.len(),
                ConnectionField::Nodes(fields) => 1 + event(fields),
                ConnectionField::Edges(fields) => {
                    1 + fields
                        .iter()
                        .map(|e| match &e.field {
                            EdgeField::Node(fields) => 1 + event(fields),
                            _ => 1,
                        })
                        .sum::<usize>()
                }
                _ => 1,
            })
            .sum();
        (PageSize::MAX as usize).saturating_mul(row)
    };
    root.iter()
        .map(|f| match &f.field {
            RootField::Org(org) => {
                1 + org
                    .fields
                    .iter()
                    .map(|f| match &f.field {
                        OrgField::Activity(c) => connection(c),
                        _ => 1,
                    })
                    .sum::<usize>()
            }
            RootField::Typename => 1,
        })
        .sum()
}
