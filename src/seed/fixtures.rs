//! The demo orgs' fixed shape: names, workspaces, apps, endpoints, people.

/// The demo orgs and the share of events each gets.
pub const DEMO_ORGS: [(&str, &str, &str, u64); 2] = [
    ("org_acme", "acme", "Acme Corporation", 65),
    ("org_globex", "globex", "Globex Corporation", 35),
];

pub(super) const WORKSPACES: [&str; 3] = ["production", "staging", "research"];
pub(super) const APPS: [&str; 3] = ["billing", "search", "assistant"];
pub(super) const ENDPOINTS: [(&str, &str, &str); 4] = [
    ("list", "GET", "items"),
    ("get", "GET", "items/{id}"),
    ("create", "POST", "items"),
    ("summarize", "POST", "summarize"),
];
pub(super) const AUGMENTATIONS: [(&str, i32); 2] = [("enrich", 3), ("triage", 5)];
pub(super) const DEPARTMENTS: [&str; 4] = ["Engineering", "Sales", "Support", "Finance"];
pub(super) const FIRST_NAMES: [&str; 24] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Dennis",
    "Radia",
    "Linus",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Annie",
    "Bjarne",
    "Joan",
    "Guido",
    "Mary",
    "Niklaus",
    "Shafi",
    "Leslie",
];
pub(super) const SERVICE_KEYS: [&str; 3] = ["ci-pipeline", "backend", "zapier"];
pub(super) const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36",
    "python-requests/2.32.3",
    "activity-cli/1.4.0",
];
pub(super) const MCP_CLIENTS: [&str; 2] = ["claude-desktop", "cursor"];

/// Every table the demo orgs have rows in, by `org_id`, children first (for
/// re-seeding; an export's chunks go with it by cascade). Their log goes
/// too: the new data set's log starts at 0 and is signed afresh.
pub(super) const ORG_TABLES: [&str; 19] = [
    "log_streams",
    "activity_rollups_hourly",
    "activity_events",
    "log_checkpoints",
    "log_purges",
    "log_tiles",
    "org_logs",
    "org_retention",
    "exports",
    "problems",
    "sessions",
    "api_keys",
    "users",
    "departments",
    "endpoints",
    "augmentations",
    "apps",
    "workspaces",
    "orgs",
];

pub(super) struct OrgShape {
    pub(super) id: &'static str,
    pub(super) slug: &'static str,
    pub(super) users: Vec<(String, String)>,
    pub(super) admins: Vec<String>,
    pub(super) keys: Vec<String>,
    pub(super) workspaces: Vec<String>,
}

impl OrgShape {
    pub(super) fn new(id: &'static str, slug: &'static str) -> Self {
        let users = (0..FIRST_NAMES.len())
            .map(|i| (format!("usr_{slug}_{:02}", i + 1), role_of(i).to_owned()))
            .collect::<Vec<_>>();
        let admins = users
            .iter()
            .filter(|(_, r)| r == "admin")
            .map(|(u, _)| u.clone())
            .collect();
        Self {
            id,
            slug,
            users,
            admins,
            keys: SERVICE_KEYS
                .iter()
                .map(|k| format!("key_{slug}_{k}"))
                .collect(),
            workspaces: WORKSPACES
                .iter()
                .map(|w| format!("ws_{slug}_{w}"))
                .collect(),
        }
    }
}

pub(super) fn role_of(index: usize) -> &'static str {
    match index {
        0..=2 => "admin",
        3..=10 => "member",
        _ => "viewer",
    }
}
