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
