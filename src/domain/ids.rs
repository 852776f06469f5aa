//! String ids with a type prefix, unique across types (`ws_…`, `act_…`).
//! The part after the prefix is a UUIDv7, so ids of one type sort by creation time.

use uuid::Uuid;

/// The type prefixes of every id, without their underscore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Org,
    Workspace,
    App,
    Endpoint,
    Augmentation,
    User,
    Department,
    Session,
    Problem,
    Export,
    Key,
    Activity,
    LogStream,
}

impl IdKind {
    pub const ALL: [IdKind; 13] = [
        Self::Org,
        Self::Workspace,
        Self::App,
        Self::Endpoint,
        Self::Augmentation,
        Self::User,
        Self::Department,
        Self::Session,
        Self::Problem,
        Self::Export,
        Self::Key,
        Self::Activity,
        Self::LogStream,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Self::Org => "org",
            Self::Workspace => "ws",
            Self::App => "app",
            Self::Endpoint => "ep",
            Self::Augmentation => "aug",
            Self::User => "usr",
            Self::Department => "dep",
            Self::Session => "ses",
            Self::Problem => "prb",
            Self::Export => "exp",
            Self::Key => "key",
            Self::Activity => "act",
            Self::LogStream => "lst",
        }
    }

    /// The resource type named in a 404's `details.resource_type`.
    pub fn resource_type(self) -> &'static str {
        match self {
            Self::Org => "org",
            Self::Workspace => "workspace",
            Self::App => "app",
            Self::Endpoint => "endpoint",
            Self::Augmentation => "augmentation",
            Self::User => "user",
            Self::Department => "department",
            Self::Session => "session",
            Self::Problem => "problem",
            Self::Export => "export",
            Self::Key => "api_key",
            Self::Activity => "activity",
            Self::LogStream => "log_stream",
        }
    }

    /// The kind an id claims by its prefix, if any.
    pub fn of(id: &str) -> Option<IdKind> {
        let (prefix, rest) = id.split_once('_')?;
        if rest.is_empty() {
            return None;
        }
        Self::ALL.into_iter().find(|k| k.prefix() == prefix)
    }
}

/// A new id of this kind: the prefix and a UUIDv7 in its simple (hex) form.
pub fn new_id(kind: IdKind) -> String {
    with_uuid(kind, Uuid::now_v7())
}

pub fn with_uuid(kind: IdKind, uuid: Uuid) -> String {
    format!("{}_{}", kind.prefix(), uuid.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_carry_their_prefix_and_are_recognised() {
        for kind in IdKind::ALL {
            let id = new_id(kind);
            assert!(id.starts_with(&format!("{}_", kind.prefix())));
            assert_eq!(IdKind::of(&id), Some(kind));
        }
        assert_eq!(IdKind::of("nope_123"), None);
        assert_eq!(IdKind::of("ws_"), None);
        assert_eq!(IdKind::of("org_acme"), Some(IdKind::Org));
    }

    #[test]
    fn activity_ids_sort_by_creation_time() {
        let a = new_id(IdKind::Activity);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(IdKind::Activity);
        assert!(a < b);
    }
}
