//! `schema.graphql` is generated from the code; this fails when it is stale.

#[test]
fn the_checked_in_schema_is_the_one_the_code_generates() {
    let generated = activity_gateway::graphql::sdl();
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(generated.contains("type Query"));
    assert!(
        generated == checked_in,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql`"
    );
}

#[test]
fn the_schema_command_prints_the_same_sdl() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_activity-gateway"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        activity_gateway::graphql::sdl()
    );
}

/// The layers point one way: `domain` <- `service` <- `auth` <- transports
/// (`rest`, `graphql`) <- `app`. Neither `domain` nor `service` may name a
/// layer above it, and `domain` uses no web framework and no database.
#[test]
fn domain_and_service_import_no_layer_above_them() {
    let above = [
        "auth",
        "rest",
        "graphql",
        "app",
        "config",
        "recording",
        "admission",
        "serve",
        "docs",
        "cli",
        "graphiql",
        "service",
    ];
    let frameworks = ["axum", "async_graphql", "sea_orm", "tower"];
    let mut found = Vec::new();
    for (layer, forbidden_crates) in [("domain", &frameworks[..]), ("service", &frameworks[..2])] {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/").to_owned() + layer;
        let mut files = vec![std::path::PathBuf::from(dir)];
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let upward = above
                    .iter()
                    .filter(|m| !(layer == "service" && **m == "service"))
                    .any(|m| {
                        code.contains(&format!("crate::{m}::"))
                            || code.contains(&format!("crate::{m}}}"))
                            || code.contains(&format!("crate::{m};"))
                    });
                let framework = forbidden_crates.iter().any(|c| {
                    code.contains(&format!("{c}::")) && !code.contains(&format!("_{c}::"))
                });
                if upward || framework {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "imports against the layers:\n{}",
        found.join("\n")
    );
}
