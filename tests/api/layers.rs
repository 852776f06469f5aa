//! The layers point one way. Each module of `src/` belongs to a layer; a
//! file may name (`crate::x`) only modules of its own layer or below, the
//! two transports never name each other, and the lower layers use no web,
//! GraphQL or OpenAPI crate (and the domain no database). The README's
//! Layout section draws the same table.

use std::path::{Path, PathBuf};

/// From the bottom up.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &["domain"]),
    // The demo data set writes through the service layer's statements.
    ("service", &["service", "db", "seed"]),
    ("auth", &["auth"]),
    (
        "shared by the transports",
        &[
            "config",
            "state",
            "http_error",
            "admission",
            "recording",
            "telemetry",
            "operations",
            "views",
            "json",
            "docs",
        ],
    ),
    ("transports", &["rest", "graphql", "graphiql", "viewer"]),
    ("app", &["app", "serve"]),
    ("entry points", &["cli", "main", "lib"]),
];

const TRANSPORTS: usize = 4;

const SERVICE: usize = 1;

/// SeaORM's calls that run a statement: only the service layer makes them,
/// so every query the gateway runs is in `service/` (or `db.rs`, `seed/`).
const QUERIES: &[&str] = &[
    "Entity::find",
    "find_by_id(",
    "query_all",
    "query_one",
    "execute_raw",
    "execute_unprepared",
    ".begin()",
    ".exec(",
    "exec_with_returning",
];

/// Crates a layer at or below the given rank may not use.
const FOREIGN: &[(&str, usize)] = &[
    ("sea_orm", 0),
    ("axum", 1),
    ("async_graphql", 1),
    ("utoipa", 1),
    ("tower", 1),
];

fn rank_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The code of a file without its comments (doc links may point anywhere).
fn code_of(path: &Path) -> String {
    without_comments(&std::fs::read_to_string(path).unwrap())
}

fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::name` the code mentions.
fn crate_modules(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // Not `activity_gateway::crate::` or a longer identifier ending in `crate`.
            code[..*at]
                .chars()
                .last()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
        })
        .map(|(at, _)| {
            code[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

fn uses_crate(code: &str, name: &str) -> bool {
    code.match_indices(&format!("{name}::")).any(|(at, _)| {
        code[..at]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
    })
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(rank) = rank_of(&module) else {
            found.push(format!(
                "src/{}: module {module} is in no layer",
                relative.display()
            ));
            continue;
        };
        let code = code_of(&file);
        for named in crate_modules(&code) {
            let Some(named_rank) = rank_of(&named) else {
                continue;
            };
            let upward = named_rank > rank;
            let across = rank == TRANSPORTS && named_rank == TRANSPORTS && named != module;
            if upward || across {
                found.push(format!(
                    "src/{} ({}) names crate::{named} ({})",
                    relative.display(),
                    LAYERS[rank].0,
                    LAYERS[named_rank].0
                ));
            }
        }
        if rank > SERVICE {
            for query in QUERIES.iter().filter(|q| code.contains(*q)) {
                found.push(format!(
                    "src/{} ({}) runs a query ({query}): queries belong in service/",
                    relative.display(),
                    LAYERS[rank].0
                ));
            }
        }
        for (foreign, highest) in FOREIGN {
            if rank <= *highest && uses_crate(&code, foreign) {
                found.push(format!(
                    "src/{} ({}) uses {foreign}",
                    relative.display(),
                    LAYERS[rank].0
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_module_names_a_layer_above_its_own_and_the_transports_never_name_each_other() {
    assert_eq!(violations(), Vec::<String>::new());
}

#[test]
fn the_check_sees_an_upward_import_and_a_foreign_crate() {
    let code = without_comments(
        "use crate::auth::Principal;\nuse axum::Json;\n// crate::app in a comment\n",
    );
    assert_eq!(crate_modules(&code), ["auth"]);
    assert!(uses_crate(&code, "axum"));
    assert!(!uses_crate("use my_axum::Json;", "axum"));
    let code = code_of(Path::new(file!()));
    assert!(code.contains("fn code_of"));
    assert_eq!(rank_of("service"), Some(SERVICE));
    assert!(QUERIES
        .iter()
        .any(|q| "entity::org::Entity::find()".contains(q)));
    assert!(rank_of("service") < rank_of("rest"));
}
