//! `resource:action` permissions and the roles that bundle them.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    ActivityRead,
    ActivityWrite,
    ActivityExport,
    ActivityRefresh,
    SessionRead,
    ProblemCreate,
    ProblemResolve,
    DocsRead,
    ActivityRetention,
    StreamManage,
    ViewerCreate,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Self::ActivityRead,
        Self::ActivityWrite,
        Self::ActivityExport,
        Self::ActivityRefresh,
        Self::SessionRead,
        Self::ProblemCreate,
        Self::ProblemResolve,
        Self::DocsRead,
        Self::ActivityRetention,
        Self::StreamManage,
        Self::ViewerCreate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActivityRead => "activity:read",
            Self::ActivityWrite => "activity:write",
            Self::ActivityExport => "activity:export",
            Self::ActivityRefresh => "activity:refresh",
            Self::SessionRead => "session:read",
            Self::ProblemCreate => "problem:create",
            Self::ProblemResolve => "problem:resolve",
            Self::DocsRead => "docs:read",
            Self::ActivityRetention => "activity:retention",
            Self::StreamManage => "stream:manage",
            Self::ViewerCreate => "viewer:create",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Member,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Self::Viewer, Self::Member, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text.trim())
    }

    pub fn permissions(self) -> BTreeSet<Permission> {
        use Permission::*;
        let viewer = [ActivityRead, SessionRead, DocsRead];
        match self {
            Self::Viewer => viewer.into(),
            Self::Member => viewer
                .into_iter()
                .chain([ProblemCreate, ProblemResolve, ActivityExport])
                .collect(),
            Self::Admin => Permission::ALL.into(),
        }
    }
}

/// Parses a comma- or space-separated permission list; the first unknown entry is the error.
pub fn parse_permissions(text: &str) -> Result<BTreeSet<Permission>, String> {
    text.split([',', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(|s| Permission::parse(s).ok_or_else(|| s.trim().to_owned()))
        .collect()
}

pub fn join_permissions(set: &BTreeSet<Permission>) -> String {
    set.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(role: Role) -> Vec<&'static str> {
        role.permissions()
            .into_iter()
            .map(Permission::as_str)
            .collect()
    }

    #[test]
    fn roles_grant_exactly_the_contracts_permissions() {
        assert_eq!(
            names(Role::Viewer),
            ["activity:read", "session:read", "docs:read"]
        );
        assert_eq!(
            names(Role::Member),
            [
                "activity:read",
                "activity:export",
                "session:read",
                "problem:create",
                "problem:resolve",
                "docs:read"
            ]
        );
        assert_eq!(names(Role::Admin).len(), 11);
        assert!(names(Role::Admin).contains(&"viewer:create"));
        assert!(names(Role::Admin).contains(&"activity:retention"));
        assert!(names(Role::Admin).contains(&"stream:manage"));
    }

    #[test]
    fn permission_lists_parse_and_reject_unknowns() {
        let set = parse_permissions("activity:read, docs:read").unwrap();
        assert_eq!(join_permissions(&set), "activity:read,docs:read");
        assert_eq!(
            parse_permissions("activity:read,activity:fly"),
            Err("activity:fly".to_owned())
        );
    }
}
