//! The documents of GraphQL requests over HTTP, prepared by the transport for
//! the plain schema (see [`super::Schemas`]):
//!
//! - parsed once per query text, and kept parsed in an LRU bounded by the
//!   bytes of the texts it holds;
//! - Automatic Persisted Queries, Apollo's protocol: a request may send
//!   `extensions.persistedQuery.sha256Hash` instead of its text once the
//!   text has been sent with its hash. Texts are kept per org, so one tenant
//!   cannot learn by probing hashes what another tenant asks;
//! - checked as the guarded schema's extensions check them, in the same
//!   order and with the same errors: async-graphql's recursion and directive
//!   limits (before anything walks the document), then its shape
//!   ([`super::shape::check`]);
//! - planned ([`super::plan`]) once the general executor has run them, so
//!   that the plan only ever answers documents that passed validation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensionValues, Pos, Request, SchemaEnv, ServerError, Value};

use super::error::input_error;
use lru::LruCache;
use sha2::{Digest, Sha256};

/// How deep selection sets may nest, fragments included: async-graphql's own
/// limit (the guarded schema sets the same), which keeps every later walk of
/// the document's tree shallow.
pub const RECURSION_DEPTH: usize = 32;
/// Bytes of query text kept parsed (the parsed form is a few times larger).
const PARSED_BYTES: usize = 4 << 20;
/// Bytes of persisted query text kept, all orgs together.
const PERSISTED_BYTES: usize = 4 << 20;
/// A text longer than this is parsed every time rather than crowd out others.
const LONGEST_KEPT: usize = 64 << 10;

/// A parsed document, and its plan once it has one.
pub struct Parsed {
    document: ExecutableDocument,
    /// Set once the general executor ran the document past validation.
    executed: AtomicBool,
    plan: OnceLock<Option<super::plan::Plan>>,
}

impl std::ops::Deref for Parsed {
    type Target = ExecutableDocument;

    fn deref(&self) -> &ExecutableDocument {
        &self.document
    }
}

impl Parsed {
    fn new(document: ExecutableDocument) -> Self {
        Self {
            document,
            executed: AtomicBool::new(false),
            plan: OnceLock::new(),
        }
    }

    /// The general executor ran this document (it passed validation).
    pub fn executed(&self) {
        self.executed.store(true, Ordering::Relaxed);
    }

    /// The plan that answers a request for `operation_name`, when the
    /// document has one and has been validated by running it once.
    pub fn plan(&self, operation_name: Option<&str>) -> Option<&super::plan::Plan> {
        if !self.executed.load(Ordering::Relaxed) {
            return None;
        }
        self.plan
            .get_or_init(|| super::plan::Plan::of(&self.document))
            .as_ref()
            .filter(|plan| plan.runs(operation_name))
    }
}

pub struct Documents {
    parsed: Mutex<Kept<Arc<Parsed>>>,
    persisted: Mutex<Kept<Arc<str>>>,
}

impl Default for Documents {
    fn default() -> Self {
        Self {
            parsed: Mutex::new(Kept::new(PARSED_BYTES)),
            persisted: Mutex::new(Kept::new(PERSISTED_BYTES)),
        }
    }
}

impl Documents {
    /// The document of `query`, parsed now or earlier.
    pub fn parse(&self, query: &str) -> Result<Arc<Parsed>, ServerError> {
        if let Some(document) = lock(&self.parsed).get(query) {
            return Ok(document);
        }
        let document = Arc::new(Parsed::new(async_graphql::parser::parse_query(query)?));
        if query.len() <= LONGEST_KEPT {
            lock(&self.parsed).put(query.to_owned(), document.clone(), query.len());
        }
        Ok(document)
    }

    /// Apollo's Automatic Persisted Queries for a request of `org`: with a
    /// hash and its text, the text is kept (when the hash is the text's);
    /// with the hash alone, the text kept for it becomes the request's.
    pub fn resolve_persisted(&self, org: &str, request: &mut Request) -> Result<(), ServerError> {
        let Some(persisted) = request.extensions.get("persistedQuery") else {
            return Ok(());
        };
        let Value::Object(persisted) = persisted else {
            return Err(input_error("`extensions.persistedQuery` must be an object"));
        };
        match persisted.get("version") {
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            _ => return Err(input_error("Unsupported persisted query version")),
        }
        let hash = match persisted.get("sha256Hash") {
            Some(Value::String(hash)) if hash.len() == 64 => hash.to_ascii_lowercase(),
            _ => {
                return Err(input_error(
                    "`extensions.persistedQuery.sha256Hash` must be 64 hexadecimal digits",
                ))
            }
        };
        let key = format!("{org}\n{hash}");
        if request.query.is_empty() {
            let text = lock(&self.persisted).get(&key).ok_or_else(not_found)?;
            request.query = text.to_string();
            return Ok(());
        }
        if hex::encode(Sha256::digest(request.query.as_bytes())) != hash {
            return Err(input_error("provided sha does not match query"));
        }
        if request.query.len() <= LONGEST_KEPT {
            let weight = key.len() + request.query.len();
            lock(&self.persisted).put(key, Arc::from(request.query.as_str()), weight);
        }
        Ok(())
    }

    /// The request's document, checked as the guarded schema would check it
    /// before validation.
    pub fn prepare(
        &self,
        schema: &SchemaEnv,
        request: &Request,
    ) -> Result<Arc<Parsed>, ServerError> {
        let document = self.parse(&request.query)?;
        within_recursion_depth(&document)?;
        within_directives(&document)?;
        match super::shape::check(&schema.registry, &document, &request.variables) {
            Some(error) => Err(error),
            None => Ok(document),
        }
    }
}

/// Apollo's answer to a hash it does not know: its client then sends the
/// text with the hash.
fn not_found() -> ServerError {
    let mut error = ServerError::new("PersistedQueryNotFound", None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "PERSISTED_QUERY_NOT_FOUND");
    // Apollo's code: its clients resend the text when they see it.
    extensions.set("status_code", 400);
    extensions.set("details", Value::Object(Default::default()));
    error.extensions = Some(extensions);
    error
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An LRU bounded by a weight in bytes that the caller gives each entry.
struct Kept<V> {
    entries: LruCache<String, (V, usize)>,
    bytes: usize,
    limit: usize,
}

impl<V: Clone> Kept<V> {
    fn new(limit: usize) -> Self {
        Self {
            entries: LruCache::unbounded(),
            bytes: 0,
            limit,
        }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        self.entries.get(key).map(|(value, _)| value.clone())
    }

    fn put(&mut self, key: String, value: V, weight: usize) {
        if let Some((_, replaced)) = self.entries.put(key, (value, weight)) {
            self.bytes -= replaced;
        }
        self.bytes += weight;
        while self.bytes > self.limit {
            match self.entries.pop_lru() {
                Some((_, (_, evicted))) => self.bytes -= evicted,
                None => break,
            }
        }
    }
}

/// async-graphql's recursion limit, with its message: selection sets nest at
/// most [`RECURSION_DEPTH`] deep, counting fragment spreads and inline
/// fragments as a level each.
fn within_recursion_depth(document: &ExecutableDocument) -> Result<(), ServerError> {
    fn walk(
        document: &ExecutableDocument,
        set: &SelectionSet,
        pos: Pos,
        depth: usize,
    ) -> Result<(), ServerError> {
        if depth > RECURSION_DEPTH {
            return Err(ServerError::new(
                format!(
                    "The recursion depth of the query cannot be greater than `{RECURSION_DEPTH}`"
                ),
                Some(pos),
            ));
        }
        for selection in &set.items {
            let (inner, at) = match &selection.node {
                Selection::Field(field) if field.node.selection_set.node.items.is_empty() => {
                    continue
                }
                Selection::Field(field) => {
                    (&field.node.selection_set.node, field.node.selection_set.pos)
                }
                Selection::FragmentSpread(spread) => {
                    match document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) => (
                            &fragment.node.selection_set.node,
                            fragment.node.selection_set.pos,
                        ),
                        None => continue,
                    }
                }
                Selection::InlineFragment(inline) => (
                    &inline.node.selection_set.node,
                    inline.node.selection_set.pos,
                ),
            };
            walk(document, inner, at, depth + 1)?;
        }
        Ok(())
    }
    document.operations.iter().try_for_each(|(_, operation)| {
        let set = &operation.node.selection_set;
        walk(document, &set.node, set.pos, 0)
    })
}

/// async-graphql's directive limit, with its message: at most
/// [`super::MAX_DIRECTIVES`] directives on one field.
fn within_directives(document: &ExecutableDocument) -> Result<(), ServerError> {
    fn walk(document: &ExecutableDocument, set: &SelectionSet) -> Result<(), ServerError> {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.directives.len() > super::MAX_DIRECTIVES {
                        return Err(ServerError::new(
                            format!(
                                "The number of directives on the field `{}` cannot be greater than `{}`",
                                field.node.name.node,
                                super::MAX_DIRECTIVES
                            ),
                            Some(field.pos),
                        ));
                    }
                    walk(document, &field.node.selection_set.node)?;
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        walk(document, &fragment.node.selection_set.node)?;
                    }
                }
                Selection::InlineFragment(inline) => {
                    walk(document, &inline.node.selection_set.node)?;
                }
            }
        }
        Ok(())
    }
    document
        .operations
        .iter()
        .try_for_each(|(_, operation)| walk(document, &operation.node.selection_set.node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persisted(query: &str) -> Request {
        let hash = hex::encode(Sha256::digest(query.as_bytes()));
        let mut request = Request::new(query);
        let mut persisted = async_graphql::indexmap::IndexMap::new();
        persisted.insert(async_graphql::Name::new("version"), Value::from(1));
        persisted.insert(async_graphql::Name::new("sha256Hash"), Value::from(hash));
        request
            .extensions
            .insert("persistedQuery".into(), Value::Object(persisted));
        request
    }

    /// Sends `query` with its hash, then the hash alone: whether the text was kept.
    fn kept(documents: &Documents, query: &str) -> bool {
        documents
            .resolve_persisted("org_acme", &mut persisted(query))
            .unwrap();
        let mut by_hash = persisted(query);
        by_hash.query.clear();
        documents
            .resolve_persisted("org_acme", &mut by_hash)
            .is_ok()
            && by_hash.query == query
    }

    /// A query text of `len` bytes: a comment after `{ __typename }`.
    fn text_of(len: usize) -> String {
        let head = "{ __typename } #";
        format!("{head}{}", "x".repeat(len - head.len()))
    }

    #[test]
    fn persisted_texts_are_kept_up_to_the_longest_kept_length_and_no_further() {
        let documents = Documents::default();
        assert!(kept(&documents, &text_of(LONGEST_KEPT)));
        assert!(!kept(&documents, &text_of(LONGEST_KEPT + 1)));
    }

    #[test]
    fn kept_entries_never_weigh_more_than_the_limit_and_the_least_recent_go_first() {
        let mut kept = Kept::new(100);
        kept.put("a".into(), 1, 40);
        kept.put("b".into(), 2, 40);
        assert_eq!(kept.get("a"), Some(1));
        // 120 bytes: "b", the least recently used, goes.
        kept.put("c".into(), 3, 40);
        assert_eq!(
            (kept.get("a"), kept.get("b"), kept.get("c")),
            (Some(1), None, Some(3))
        );
        assert_eq!(kept.bytes, 80);
        // Exactly at the limit everything stays; one byte past it does not.
        kept.put("d".into(), 4, 20);
        assert_eq!(kept.bytes, 100);
        assert_eq!(kept.entries.len(), 3);
        kept.put("e".into(), 5, 1);
        assert!(kept.bytes <= 100);
        assert_eq!(kept.get("e"), Some(5));
        // Replacing an entry counts its new weight only.
        kept.put("e".into(), 6, 2);
        assert_eq!(kept.get("e"), Some(6));
        assert!(kept.bytes <= 100);
    }
}
