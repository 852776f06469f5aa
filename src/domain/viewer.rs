//! Viewer tokens: short-lived, read-only credentials a platform's backend
//! makes for one of its customers, confined to part of one org's activity
//! and to the web origins allowed to use them from a browser.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::feed::ActivityFilter;

/// What a viewer token's reads are confined to. Every feed, summary and
/// subscription it reads is the caller's own filter *and* this: the caller
/// can narrow further, never wider. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Confinement {
    pub workspace_ids: Vec<String>,
    pub user_id: Option<String>,
    /// A fixed feed filter (its time range included).
    pub filter: ActivityFilter,
}

impl Confinement {
    /// A stable text of the confinement, for cursors and caches.
    pub fn canonical(&self) -> String {
        let mut workspaces = self.workspace_ids.clone();
        workspaces.sort();
        format!(
            "ws={}|user={:?}|{}",
            workspaces.join(","),
            self.user_id,
            self.filter.canonical()
        )
    }
}

/// A viewer token as stored with its key row (`api_keys.viewer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ViewerToken {
    pub confinement: Arc<Confinement>,
    /// Exact origins (`https://app.example.com`), lowercase, no path.
    pub allowed_origins: Vec<String>,
}

impl ViewerToken {
    /// Whether a browser at `origin` may use the token.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|o| o == origin)
    }
}

/// The shortest and longest lifetimes, and the default, in seconds.
pub const MIN_TTL_SECONDS: i64 = 1;
pub const MAX_TTL_SECONDS: i64 = 86_400;
pub const DEFAULT_TTL_SECONDS: i64 = 900;
/// At most this many origins and workspaces per token.
pub const MAX_ORIGINS: usize = 20;
pub const MAX_WORKSPACES: usize = 100;

/// An origin as a browser sends it (`scheme://host[:port]`), lowercased, or
/// `None` when the text is not one: http or https, a host, no path, query,
/// fragment or credentials.
pub fn normalized_origin(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none_or(str::is_empty)
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || url.path() != "/"
    {
        return None;
    }
    let origin = url.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            normalized_origin("https://App.Example.com").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            normalized_origin("http://localhost:8080/").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(
            normalized_origin("https://example.com:443").as_deref(),
            Some("https://example.com")
        );
        for bad in [
            "",
            "*",
            "null",
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user:pw@example.com",
            "https://example.com?x=1",
            "https://example.com#f",
            "javascript:alert(1)",
        ] {
            assert_eq!(normalized_origin(bad), None, "{bad}");
        }
    }
}
