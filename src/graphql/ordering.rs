//! The answer's fields in the order the selection set asks for them, as the
//! GraphQL spec requires ("Serialized Map Ordering"). async-graphql resolves
//! a selection's fields concurrently and keeps them in the order they
//! finish, so a `totalCount` that waits for the database lands after the
//! `nodes` that did not; each object of the answer is put back in selection
//! order here, once execution is done.
//!
//! The same extension tells the transport whether execution began at all:
//! a request refused before it (parse, validation, limits) is a "request
//! error", which GraphQL over HTTP answers differently ([`Executed`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Response, ServerResult, Value, Variables};

/// Put into a request's data by the transport: set once execution begins,
/// with the executed operation's type and first root field.
#[derive(Clone, Default)]
pub struct Executed(Arc<(AtomicBool, Mutex<Option<(&'static str, String)>>)>);

impl Executed {
    pub fn began(&self) -> bool {
        self.0 .0.load(Ordering::Relaxed)
    }

    /// `("query" | "mutation" | "subscription", first root field)`, once
    /// execution began.
    pub fn operation(&self) -> Option<(&'static str, String)> {
        self.0 .1.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub struct SelectionOrder;

impl ExtensionFactory for SelectionOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Ordered::default())
    }
}

/// One request's extension: it keeps the parsed document for the answer.
#[derive(Default)]
struct Ordered {
    document: Mutex<Option<ExecutableDocument>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Ordered {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        *self.document.lock().unwrap_or_else(|p| p.into_inner()) = Some(document.clone());
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let document = self
            .document
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let operation = document.as_ref().and_then(|document| {
            document
                .operations
                .iter()
                .find(|(name, _)| {
                    operation_name.is_none() || name.map(|n| n.as_str()) == operation_name
                })
                .map(|(_, operation)| operation)
        });
        if let Some(executed) = ctx.data_opt::<Executed>() {
            executed.0 .0.store(true, Ordering::Relaxed);
            if let Some(operation) = operation {
                *executed.0 .1.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(label(&operation.node));
            }
        }
        let mut response = next.run(ctx, operation_name).await;
        if let (Some(document), Some(operation)) = (&document, operation) {
            order(
                &mut response.data,
                &[&operation.node.selection_set.node],
                document,
            );
        }
        response
    }
}

/// An operation's type and first root field.
pub(super) fn label(operation: &OperationDefinition) -> (&'static str, String) {
    let kind = match operation.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = operation
        .selection_set
        .node
        .items
        .iter()
        .find_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    (kind, field)
}

/// Puts every object in `value` in the order of `sets` (the selection sets
/// that produced it: one, or several when fragments select the same field).
fn order(value: &mut Value, sets: &[&SelectionSet], document: &ExecutableDocument) {
    match value {
        Value::List(items) => items
            .iter_mut()
            .for_each(|item| order(item, sets, document)),
        Value::Object(fields) => {
            let mut keys: Vec<(Name, Vec<&SelectionSet>)> = Vec::new();
            for set in sets {
                collect(set, document, &mut keys, &mut Vec::new());
            }
            let mut ordered = async_graphql::indexmap::IndexMap::with_capacity(fields.len());
            for (key, sub) in &keys {
                if let Some(mut child) = fields.swap_remove(key) {
                    order(&mut child, sub, document);
                    ordered.insert(key.clone(), child);
                }
            }
            // Anything not selected by name (none expected) keeps its place after.
            ordered.extend(fields.drain(..));
            *fields = ordered;
        }
        _ => {}
    }
}

/// The response keys of `set` in selection order, each with the sub-selections
/// that select under it, through fragments and inline fragments.
fn collect<'a>(
    set: &'a SelectionSet,
    document: &'a ExecutableDocument,
    keys: &mut Vec<(Name, Vec<&'a SelectionSet>)>,
    fragments: &mut Vec<&'a str>,
) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.clone();
                let sub = &field.node.selection_set.node;
                match keys.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, subs)) => subs.push(sub),
                    None => keys.push((key, vec![sub])),
                }
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if fragments.contains(&name) {
                    continue;
                }
                if let Some(fragment) = document.fragments.get(name) {
                    fragments.push(name);
                    collect(&fragment.node.selection_set.node, document, keys, fragments);
                    fragments.pop();
                }
            }
            Selection::InlineFragment(inline) => {
                collect(&inline.node.selection_set.node, document, keys, fragments);
            }
        }
    }
}
