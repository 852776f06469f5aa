//! The answer's fields in the order the selection set asks for them, as the
//! GraphQL spec requires ("Serialized Map Ordering"). async-graphql resolves
//! a selection's fields concurrently and keeps them in the order they
//! finish, so a `totalCount` that waits for the database lands after the
//! `nodes` that did not; each object of the answer is put back in selection
//! order here, once execution is done.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
};
use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Response, ServerResult, Value, Variables};

/// The extension that orders answers, for the guarded schema (batches and
/// subscriptions); the plain schema's transport calls [`order_answer`].
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
        let mut response = next.run(ctx, operation_name).await;
        if let Some(document) = &document {
            order_answer(&mut response.data, document, operation_name);
        }
        response
    }
}

/// The operation a request selects: the one named, or the only one.
pub fn operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let mut operations = document.operations.iter();
    let (_, operation) = match name {
        Some(wanted) => operations.find(|(name, _)| name.is_some_and(|n| n.as_str() == wanted))?,
        None => match (operations.next(), operations.next()) {
            (Some(only), None) => only,
            _ => return None,
        },
    };
    Some(&operation.node)
}

/// Puts the answer `data` of the operation named `operation_name` in
/// selection order.
pub fn order_answer(data: &mut Value, document: &ExecutableDocument, operation_name: Option<&str>) {
    if let Some(operation) = operation(document, operation_name) {
        order(data, &[&operation.selection_set.node], document);
    }
}

/// The name of the operation that runs: the one asked for, or the
/// document's only one.
pub fn operation_name(document: &ExecutableDocument, asked: Option<&str>) -> Option<String> {
    match asked {
        Some(name) => Some(name.to_owned()),
        None => {
            let mut operations = document.operations.iter();
            match (operations.next(), operations.next()) {
                (Some((name, _)), None) => name.map(|n| n.to_string()),
                _ => None,
            }
        }
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
    if matches!(value, Value::List(_) | Value::Object(_)) {
        // The items of a list were all selected by the same sets: their keys
        // are collected once for all of them.
        let mut keys = Vec::new();
        for set in sets {
            collect(set, document, &mut keys, &mut Vec::new());
        }
        order_by(value, &keys, document);
    }
}

type Keys<'a> = [(Name, Vec<&'a SelectionSet>)];

fn order_by(value: &mut Value, keys: &Keys<'_>, document: &ExecutableDocument) {
    match value {
        Value::List(items) => items
            .iter_mut()
            .for_each(|item| order_by(item, keys, document)),
        Value::Object(fields) => {
            // Fields that were ready at once come back in order already, each
            // beside its key: then no lookup is needed at all.
            let in_order =
                fields.len() == keys.len() && fields.keys().zip(keys).all(|(f, (k, _))| f == k);
            if in_order {
                for ((_, child), (_, sub)) in fields.iter_mut().zip(keys) {
                    order(child, sub, document);
                }
                return;
            }
            for (key, sub) in keys {
                if let Some(child) = fields.get_mut(key) {
                    order(child, sub, document);
                }
            }
            // Some fields (skipped ones) may be absent: only an object out of
            // order is rebuilt.
            let mut expected = keys
                .iter()
                .map(|(k, _)| k)
                .filter(|k| fields.contains_key(*k));
            if fields.keys().all(|k| expected.next() == Some(k)) {
                return;
            }
            let mut ordered = async_graphql::indexmap::IndexMap::with_capacity(fields.len());
            for (key, _) in keys {
                if let Some(child) = fields.swap_remove(key) {
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
