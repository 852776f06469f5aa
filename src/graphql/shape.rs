//! Checks of a document's shape that need the schema's types, made right
//! after parsing, so that a failing document is refused whole like any other
//! validation error (`data` absent), before anything runs.
//!
//! - **Depth** counts the fields that read data. Introspection is held by the
//!   rule graphql-js uses (`MaxIntrospectionDepthRule`) instead: its list
//!   fields (`fields`, `interfaces`, `possibleTypes`, `inputFields`) nest at
//!   most two deep. The standard introspection query, whose `ofType` chains go
//!   nine levels down, passes; an introspection query that multiplies the
//!   schema by itself does not.
//! - **Int is 32 bits**, in literals and variables, inside input objects and
//!   lists too. async-graphql's own check only sees whether a number is an
//!   integer and leaves the range to execution, where the answer would carry
//!   partial data.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaField, MetaType, Registry};
use async_graphql::{Pos, ServerError, ServerResult, Value as ConstValue, Variables};

/// How deep the fields that read data may nest.
pub const MAX_DEPTH: usize = 12;
/// How deep introspection's list fields may nest (graphql-js's rule).
pub const MAX_INTROSPECTION_LISTS: usize = 2;
/// How deep an introspection query may go at all (`ofType` chains).
pub const MAX_INTROSPECTION_DEPTH: usize = 16;

pub struct DocumentShape;

impl ExtensionFactory for DocumentShape {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentShape)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for DocumentShape {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        match check(&ctx.schema_env.registry, &document, variables) {
            Some(error) => Err(error),
            None => Ok(document),
        }
    }
}

/// The first thing wrong with the document's shape, if any.
pub fn check(
    registry: &Registry,
    document: &ExecutableDocument,
    variables: &Variables,
) -> Option<ServerError> {
    let mut walk = Walk {
        registry,
        document,
        visiting: HashSet::new(),
        error: None,
    };
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    for op in operations {
        for definition in &op.node.variable_definitions {
            let name = &definition.node.name.node;
            if let Some(value) = variables.get(name) {
                let ty = definition.node.var_type.node.to_string();
                if let Some(problem) = walk.out_of_range(value, &ty) {
                    return Some(ServerError::new(
                        format!("Variable \"${name}\" got an invalid value: {problem}"),
                        Some(definition.pos),
                    ));
                }
            }
        }
        let root = match op.node.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        walk.selections(&op.node.selection_set.node, root, Depth::default());
        if walk.error.is_some() {
            break;
        }
    }
    walk.error
}

#[derive(Clone, Copy, Default)]
struct Depth {
    data: usize,
    /// Inside `__schema` or `__type`: how deep, and how many list fields deep.
    introspection: Option<(usize, usize)>,
}

struct Walk<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
    /// Fragments being walked (a cycle is validation's to report).
    visiting: HashSet<&'a str>,
    error: Option<ServerError>,
}

impl<'a> Walk<'a> {
    fn fail(&mut self, message: String, pos: Pos) {
        self.error
            .get_or_insert_with(|| ServerError::new(message, Some(pos)));
    }

    fn selections(&mut self, set: &'a SelectionSet, parent: Option<&'a str>, depth: Depth) {
        for selection in &set.items {
            if self.error.is_some() {
                return;
            }
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let Some(depth) = self.enter(name, depth, field.pos) else {
                        return;
                    };
                    let meta = parent.and_then(|p| self.field(p, name));
                    if let Some(meta) = meta {
                        for (arg, value) in &field.node.arguments {
                            let Some(ty) = meta.args.get(arg.node.as_str()).map(|a| a.ty.as_str())
                            else {
                                continue;
                            };
                            // Variables count as null here: they are checked
                            // against their own definitions.
                            let at = value.pos;
                            let value = value.node.clone().into_const_with(|_| {
                                Ok::<_, std::convert::Infallible>(ConstValue::Null)
                            });
                            if let Ok(Some(problem)) = value.map(|v| self.out_of_range(&v, ty)) {
                                self.fail(
                                    format!("Invalid value for argument \"{arg}\" of \"{name}\": {problem}", arg = arg.node),
                                    at,
                                );
                                return;
                            }
                        }
                    }
                    let child = meta.map(|f| named(&f.ty));
                    self.selections(&field.node.selection_set.node, child, depth);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if !self.visiting.insert(name) {
                        continue;
                    }
                    let on = fragment.node.type_condition.node.on.node.as_str();
                    self.selections(&fragment.node.selection_set.node, Some(on), depth);
                    self.visiting.remove(name);
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str())
                        .or(parent);
                    self.selections(&inline.node.selection_set.node, on, depth);
                }
            }
        }
    }

    /// The depth inside field `name`, or `None` (and the error) past a limit.
    fn enter(&mut self, name: &str, depth: Depth, pos: Pos) -> Option<Depth> {
        let mut inner = depth;
        match depth.introspection {
            _ if name == "__typename" => {}
            None if name.starts_with("__") => inner.introspection = Some((1, 0)),
            None => {
                inner.data += 1;
                if inner.data > MAX_DEPTH {
                    self.fail("Query is nested too deep.".into(), pos);
                    return None;
                }
            }
            Some((levels, lists)) => {
                let lists = lists
                    + usize::from(matches!(
                        name,
                        "fields" | "interfaces" | "possibleTypes" | "inputFields"
                    ));
                inner.introspection = Some((levels + 1, lists));
                if lists > MAX_INTROSPECTION_LISTS || levels + 1 > MAX_INTROSPECTION_DEPTH {
                    self.fail("The introspection query is nested too deep.".into(), pos);
                    return None;
                }
            }
        }
        Some(inner)
    }

    /// Field `name` of type `parent`, as the schema declares it.
    fn field(&self, parent: &str, name: &str) -> Option<&'a MetaField> {
        match self.registry.types.get(parent)? {
            MetaType::Object { fields, .. } | MetaType::Interface { fields, .. } => {
                fields.get(name)
            }
            _ => None,
        }
    }

    /// What is wrong with `value` as a `ty` (a type as written, `[Int!]!`),
    /// as far as Int's range goes.
    fn out_of_range(&self, value: &ConstValue, ty: &str) -> Option<String> {
        let ty = ty.strip_suffix('!').unwrap_or(ty);
        if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return match value {
                ConstValue::List(items) => items.iter().find_map(|v| self.out_of_range(v, inner)),
                single => self.out_of_range(single, inner),
            };
        }
        match (value, self.registry.types.get(ty)) {
            (ConstValue::Number(n), _) if ty == "Int" => {
                let fits = n.as_i64().map(i32::try_from).map(|r| r.is_ok());
                // A float is not an Int either, but that is validation's to say.
                (fits == Some(false) || (n.as_i64().is_none() && n.as_u64().is_some()))
                    .then(|| format!("{n} is not a 32-bit Int (from -2147483648 to 2147483647)"))
            }
            (ConstValue::Object(fields), Some(MetaType::InputObject { input_fields, .. })) => {
                fields.iter().find_map(|(name, v)| {
                    let field = input_fields.get(name.as_str())?;
                    self.out_of_range(v, &field.ty)
                        .map(|problem| format!("at \"{name}\": {problem}"))
                })
            }
            _ => None,
        }
    }
}

/// The named type under a type's list and non-null marks.
fn named(ty: &str) -> &str {
    ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
}
