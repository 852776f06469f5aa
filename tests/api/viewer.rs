//! The activity viewer at /viewer, driven in real headless Chromium with a
//! viewer token narrowed to one workspace: the table, paging, the drawer, the
//! chart against the database, filters in the URL across a reload, the live
//! tail, hand-made requests that try to widen the token, an XSS payload that
//! stays text, and an expired token. Screenshots are the test's artifacts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use activity_gateway::domain::permission::Role;
use activity_gateway::domain::time::parse_timestamp;
use fantoccini::{Client, Locator};
use serde_json::json;

use crate::common::{read, TestApp, TestDb};
use crate::graphiql::{click, inner_text, text_shows, Driver};
use crate::live::ingest;
use crate::viewer_tokens::token as viewer_token;

on_both_backends!(
    the_viewer_shows_a_narrowed_token_its_events_in_headless_chromium,
    the_viewer_page_is_served_under_a_strict_policy,
    the_viewer_embeds_in_a_page_of_an_allowed_origin_only,
    the_viewer_follows_the_systems_light_or_dark_theme,
);

const PRODUCTION: &str = "ws_acme_production";
const STAGING: &str = "ws_acme_staging";
const XSS_PATH: &str = "/<script>window.__xss = 1</script>";
const XSS_NOTE: &str = "<img src=x onerror=\"window.__xss = 2\">";

/// The ids of the first `n` events of the workspace, newest first, as the
/// admin's feed lists them (the action filter when given).
async fn newest(app: &TestApp, key: &str, n: usize, actions: Option<&[&str]>) -> Vec<String> {
    let mut filter = json!({ "workspaceId": PRODUCTION });
    if let Some(actions) = actions {
        filter["actions"] = json!(actions);
    }
    let (_, body) = app
        .graphql_with(
            "query($first: Int, $filter: ActivityFilterInput) { org(id: \"org_acme\") { activity(first: $first, filter: $filter) { nodes { id } } } }",
            json!({ "first": n, "filter": filter }),
            |r| r.header("X-Api-Key", key),
        )
        .await;
    body["data"]["org"]["activity"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The table's rows: each row's event id and its cells' text.
async fn rows(browser: &Client) -> Vec<(String, Vec<String>)> {
    let value = browser
        .execute(
            "return [...document.querySelectorAll('[data-testid=events] tbody tr')]
               .map(r => [r.dataset.id, [...r.cells].map(c => c.textContent)]);",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

/// Waits until the table's rows satisfy `done`, and answers them.
async fn rows_when(
    browser: &Client,
    what: &str,
    done: impl Fn(&[(String, Vec<String>)]) -> bool,
) -> Vec<(String, Vec<String>)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = rows(browser).await;
        if done(&shown) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the table shows {} rows; the page says {}",
            shown.len(),
            inner_text(browser, "[data-testid=state]").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The column of `label` in the table's header.
async fn column(browser: &Client, label: &str) -> usize {
    let value = browser
        .execute(
            "return [...document.querySelectorAll('[data-testid=events] thead th')].map(h => h.textContent).indexOf(arguments[0]);",
            vec![json!(label)],
        )
        .await
        .unwrap();
    usize::try_from(value.as_i64().unwrap()).unwrap_or_else(|_| panic!("no column {label}"))
}

async fn attribute(browser: &Client, selector: &str, name: &str) -> Option<String> {
    browser
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
            vec![json!(selector), json!(name)],
        )
        .await
        .unwrap()
        .as_str()
        .map(str::to_owned)
}

async fn screenshot(browser: &Client, db: &TestDb, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("viewer-{:?}-{name}.png", db.backend).to_lowercase());
    std::fs::write(&file, &png).unwrap();
    println!("screenshot: {}", file.display());
}

async fn the_viewer_shows_a_narrowed_token_its_events_in_headless_chromium(db: TestDb) {
    db.seed(600).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let xss = ingest(
        &app,
        &key,
        "org_acme",
        json!([{ "action": "read", "workspace_id": PRODUCTION, "path": XSS_PATH,
                 "metadata": { "note": XSS_NOTE, "link": "javascript:window.__xss = 3" } }]),
    )
    .await
    .remove(0);
    let (token, _) = viewer_token(
        &app,
        &key,
        json!({ "allowedOrigins": [], "workspaceIds": [PRODUCTION], "canExport": true }),
    )
    .await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    // Every event from 2000 on; the token in the fragment.
    browser
        .goto(&app.url(&format!("/viewer?start=2000-01-01T00:00#token={token}")))
        .await
        .unwrap();
    let expected = newest(&app, &key, 100, None).await;
    let shown = rows_when(&browser, "the first page", |r| r.len() == 50).await;
    let ids: Vec<&String> = shown.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, expected[..50].iter().collect::<Vec<_>>());
    let workspace = column(&browser, "Workspace").await;
    assert!(shown
        .iter()
        .all(|(_, cells)| cells[workspace] == PRODUCTION));
    // The token left the address bar.
    let url = browser.current_url().await.unwrap();
    assert!(!url.as_str().contains(&token), "{url}");
    screenshot(&browser, &db, "table").await;

    // The next page continues without gaps or repeats.
    click(&browser, "[data-testid=more]").await;
    let shown = rows_when(&browser, "the second page", |r| r.len() == 100).await;
    let ids: Vec<&String> = shown.iter().map(|(id, _)| id).collect();
    assert_eq!(ids, expected.iter().collect::<Vec<_>>());

    // The XSS payload is text: visible, and nothing ran.
    let path = column(&browser, "Path").await;
    let (_, cells) = shown
        .iter()
        .find(|(id, _)| *id == xss)
        .expect("the XSS event is listed");
    assert_eq!(cells[path], XSS_PATH);
    click(
        &browser,
        &format!("[data-testid=events] tr[data-id='{xss}']"),
    )
    .await;
    // As readable JSON: the payload is a string in it.
    let note = serde_json::to_string(XSS_NOTE).unwrap();
    text_shows(&browser, "[data-testid=metadata]", &note).await;
    text_shows(
        &browser,
        "[data-testid=metadata]",
        "javascript:window.__xss = 3",
    )
    .await;
    let ran = browser
        .execute("return [window.__xss === undefined, document.querySelectorAll('main img, main script').length];", vec![])
        .await
        .unwrap();
    assert_eq!(ran, json!([true, 0]));
    assert!(browser.get_alert_text().await.is_err(), "no dialog opened");
    screenshot(&browser, &db, "drawer").await;
    browser
        .find(Locator::Css("[data-testid=drawer] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The chart's totals are the database's for its window.
    let deadline = Instant::now() + Duration::from_secs(30);
    while attribute(&browser, "[data-testid=chart]", "data-requests")
        .await
        .is_none()
    {
        assert!(Instant::now() < deadline, "the chart never drew");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let charted: i64 = attribute(&browser, "[data-testid=chart]", "data-requests")
        .await
        .unwrap()
        .parse()
        .unwrap();
    let (start, end) = (
        attribute(&browser, "[data-testid=chart]", "data-start")
            .await
            .unwrap(),
        attribute(&browser, "[data-testid=chart]", "data-end")
            .await
            .unwrap(),
    );
    let (start, end) = (
        parse_timestamp(&start).unwrap(),
        parse_timestamp(&end).unwrap(),
    );
    let in_window = db
        .count_events(&format!("org_id = 'org_acme' AND workspace_id = '{PRODUCTION}' AND ts >= {start} AND ts < {end}"))
        .await;
    assert_eq!(charted, in_window);
    assert!(charted > 0);
    assert_eq!(
        inner_text(&browser, "[data-testid=requests]").await,
        charted.to_string()
    );
    let canvases = browser
        .execute(
            "return document.querySelectorAll('[data-testid=chart] canvas').length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(canvases, json!(1), "uPlot drew under the page's policy");

    // A filter narrows the table and the URL; a reload keeps both.
    let actions = browser
        .find(Locator::Css("input[name=action]"))
        .await
        .unwrap();
    actions.send_keys("read").await.unwrap();
    click(&browser, "form[role=search] button[type=submit]").await;
    let reads = newest(&app, &key, 50, Some(&["read"])).await;
    let action = column(&browser, "Action").await;
    rows_when(&browser, "the filtered table", |r| {
        r.iter().map(|(id, _)| id).eq(reads.iter()) && r.iter().all(|(_, c)| c[action] == "read")
    })
    .await;
    let url = browser.current_url().await.unwrap();
    assert!(
        url.query().unwrap_or_default().contains("action=read"),
        "{url}"
    );
    browser.refresh().await.unwrap();
    rows_when(&browser, "the table after a reload", |r| {
        r.iter().map(|(id, _)| id).eq(reads.iter())
    })
    .await;
    let kept = browser
        .execute(
            "return document.querySelector('input[name=action]').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, json!("read"));
    screenshot(&browser, &db, "filtered").await;
    // Free text narrows further (the XSS event's path), then is cleared.
    let search = browser
        .find(Locator::Css("input[name=search]"))
        .await
        .unwrap();
    search.send_keys("XSS").await.unwrap();
    click(&browser, "form[role=search] button[type=submit]").await;
    rows_when(&browser, "the searched table", |r| {
        r.len() == 1 && r[0].0 == xss
    })
    .await;
    assert!(browser
        .current_url()
        .await
        .unwrap()
        .query()
        .unwrap_or_default()
        .contains("search=XSS"));
    // Text nothing holds: the empty state, and no rows.
    search.clear().await.unwrap();
    search.send_keys("nothing-holds-this").await.unwrap();
    click(&browser, "form[role=search] button[type=submit]").await;
    text_shows(&browser, "[data-testid=state]", "No events match").await;
    assert_eq!(
        attribute(&browser, "[data-testid=state]", "data-kind")
            .await
            .as_deref(),
        Some("empty")
    );
    assert!(rows(&browser).await.is_empty());
    search.clear().await.unwrap();
    click(&browser, "form[role=search] button[type=submit]").await;
    rows_when(&browser, "the table without the search", |r| {
        r.iter().map(|(id, _)| id).eq(reads.iter())
    })
    .await;

    // Live: an event of the workspace appears within 2 s; another
    // workspace's never does.
    click(&browser, "[data-testid=live]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while attribute(&browser, "[data-testid=live]", "data-connected")
        .await
        .is_none()
    {
        assert!(Instant::now() < deadline, "the live tail never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The subscription is sent right after the acknowledgement.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ingested = ingest(&app, &key, "org_acme", json!([{ "action": "read", "workspace_id": STAGING }, { "action": "read", "workspace_id": PRODUCTION }]),
    )
    .await;
    let sent = Instant::now();
    rows_when(&browser, "the live event", |r| {
        r.first().is_some_and(|(id, _)| *id == ingested[1])
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "shown after {:?}",
        sent.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rows(&browser)
        .await
        .iter()
        .all(|(id, _)| *id != ingested[0]));
    screenshot(&browser, &db, "live").await;
    // A dropped connection: the tail comes back from the last event it
    // delivered, so an event stored while it was away still arrives, once.
    browser
        .execute(
            "ActivityViewer.current.socket.close(4000); return true;",
            vec![],
        )
        .await
        .unwrap();
    let away = ingest(
        &app,
        &key,
        "org_acme",
        json!([{ "action": "read", "workspace_id": PRODUCTION }]),
    )
    .await;
    let shown = rows_when(&browser, "the event stored while the tail was away", |r| {
        r.first().is_some_and(|(id, _)| *id == away[0])
    })
    .await;
    assert_eq!(shown.iter().filter(|(id, _)| *id == ingested[1]).count(), 1);

    // Keyboard: a row opens the drawer with Enter, Escape closes it and
    // gives the focus back to the row; every control has a name.
    browser
        .execute(
            "document.querySelector('[data-testid=events] tbody tr').focus(); return true;",
            vec![],
        )
        .await
        .unwrap();
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E007}")
        .await
        .unwrap();
    text_shows(&browser, "[data-testid=drawer] h2", &away[0]).await;
    let focused = browser
        .execute("return document.activeElement.textContent;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, json!("Close"));
    browser
        .active_element()
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    let back = browser
        .execute(
            "return [document.querySelector('[data-testid=drawer]').hidden, document.activeElement.dataset.id];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(back, json!([true, away[0]]));
    let unnamed = browser
        .execute(
            "return [...document.querySelectorAll('main input, main select, main button')]
               .filter(e => !e.hidden && !(e.getAttribute('aria-label') || e.closest('label') || e.textContent.trim()))
               .map(e => e.outerHTML);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unnamed, json!([]), "controls without an accessible name");

    // Requests made by hand in the page, with its token, cannot widen it.
    let answers = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const token = sessionStorage.getItem('activity-viewer-token');
             const ask = (query) => fetch('/graphql', { method: 'POST',
               headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token },
               body: JSON.stringify({ query }) }).then(r => r.json());
             Promise.all([
               ask('{ org(id: \"org_acme\") { activity(first: 200, filter: { workspaceId: \"ws_acme_staging\" }) { totalCount nodes { id } } } }'),
               ask('{ org(id: \"org_acme\") { activity(first: 200) { nodes { workspaceId } } } }'),
               ask('{ org(id: \"org_acme\") { workspaces { nodes { id } } } }'),
               fetch('/v1/orgs/org_acme/workspaces/ws_acme_staging/activity', { headers: { 'Authorization': 'Bearer ' + token } }).then(r => r.status),
             ]).then(done, e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        answers[0]["data"]["org"]["activity"]["totalCount"], 0,
        "{answers}"
    );
    assert!(answers[1]["data"]["org"]["activity"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["workspaceId"] == PRODUCTION));
    assert_eq!(
        answers[2]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answers}"
    );
    assert_eq!(answers[3], 403);

    // The export button ends in a downloaded ZIP of the workspace's events
    // alone.
    click(&browser, "[data-testid=export]").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while attribute(&browser, "[data-testid=export-status]", "data-bytes")
        .await
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the export never downloaded: {} / {}",
            inner_text(&browser, "[data-testid=export-status]").await,
            inner_text(&browser, "[data-testid=state]").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name = attribute(&browser, "[data-testid=export-status]", "data-file")
        .await
        .unwrap();
    let downloaded = profile.path().join("downloads").join(&name);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !downloaded.is_file() {
        assert!(
            Instant::now() < deadline,
            "{} was not downloaded",
            downloaded.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bytes = std::fs::read(&downloaded).unwrap();
    let workspaces = crate::common::zip_csv_column(&bytes, "events.csv", "workspace_id");
    assert_eq!(
        workspaces.len() as i64,
        db.count_events(&format!(
            "org_id = 'org_acme' AND workspace_id = '{PRODUCTION}'"
        ))
        .await
    );
    assert!(workspaces.iter().all(|w| w == PRODUCTION));
    // Not the whole org's: no sessions, and no log (its events are a part).
    assert!(crate::common::zip_csv_column(&bytes, "sessions.csv", "id").is_empty());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    assert!(zip.by_name("log.jsonl").is_err() && zip.by_name("checkpoint.txt").is_err());
    screenshot(&browser, &db, "exported").await;

    // An expired token: the page says the session ended.
    let (expiring, _) =
        viewer_token(&app, &key, json!({ "allowedOrigins": [], "ttlSeconds": 1 })).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    browser
        .goto(&app.url(&format!("/viewer#token={expiring}")))
        .await
        .unwrap();
    text_shows(&browser, "[data-testid=state]", "Your session has ended").await;
    assert_eq!(
        attribute(&browser, "[data-testid=state]", "data-kind")
            .await
            .as_deref(),
        Some("expired")
    );
    assert!(rows(&browser).await.is_empty());
    screenshot(&browser, &db, "expired").await;
    browser.close().await.unwrap();
    app.stop().await;
}

async fn the_viewer_page_is_served_under_a_strict_policy(db: TestDb) {
    db.seed(0).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let policy = |response: &reqwest::Response| {
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let page = app.client.get(app.url("/viewer")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let strict = policy(&page);
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(strict.contains(part), "{strict}");
    }
    assert!(!strict.contains("unsafe"), "{strict}");
    let (_, html) = read(page).await;
    let html = html.as_str().unwrap().to_owned();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from another host"
    );
    // Framed only by the token's origins, named by its public id.
    let (_, id) = viewer_token(
        &app,
        &key,
        json!({ "allowedOrigins": ["https://app.example.com", "http://localhost:3000"] }),
    )
    .await;
    let framed = app
        .client
        .get(app.url(&format!("/viewer?token_id={id}")))
        .send()
        .await
        .unwrap();
    assert!(
        policy(&framed).ends_with("frame-ancestors https://app.example.com http://localhost:3000"),
        "{}",
        policy(&framed)
    );
    for unknown in ["key_nope", "%27none%27%3B%20script-src%20*"] {
        let page = app
            .client
            .get(app.url(&format!("/viewer?token_id={unknown}")))
            .send()
            .await
            .unwrap();
        assert!(
            policy(&page).ends_with("frame-ancestors 'none'"),
            "{}",
            policy(&page)
        );
    }
    // Revoked, the token frames nothing.
    let body = crate::viewer_tokens::revoke(&app, &key, &id).await;
    assert_eq!(body["data"]["revokeViewerToken"], true, "{body}");
    let page = app
        .client
        .get(app.url(&format!("/viewer?token_id={id}")))
        .send()
        .await
        .unwrap();
    assert!(policy(&page).ends_with("frame-ancestors 'none'"));
    // The assets exist and nothing else does.
    for (asset, kind) in [
        ("viewer.js", "text/javascript"),
        ("viewer.css", "text/css"),
        ("uplot.min.js", "text/javascript"),
        ("uplot.min.css", "text/css"),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/viewer/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
    }
    let response = app
        .client
        .get(app.url("/viewer/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

/// A platform's page on an origin of its own (another port), served from
/// `listener`: `/script` includes the viewer's script and mounts it;
/// `/frame` frames the page.
fn platform(
    listener: tokio::net::TcpListener,
    gateway: &str,
    token: &str,
    token_id: &str,
    posted_token: &str,
) -> tokio::task::JoinHandle<()> {
    let script = format!(
        r#"<!doctype html><html><head><title>Platform</title>
<link rel="stylesheet" href="{gateway}/viewer/uplot.min.css">
<link rel="stylesheet" href="{gateway}/viewer/viewer.css">
<script src="{gateway}/viewer/uplot.min.js"></script>
<script src="{gateway}/viewer/viewer.js"></script></head>
<body><h1>Our product</h1><div id="activity"></div>
<script>ActivityViewer.mount(document.getElementById("activity"),
  {{ endpoint: "{gateway}/graphql", token: "{token}", syncUrl: false }});</script>
</body></html>"#
    );
    let frame = format!(
        r#"<!doctype html><html><head><title>Platform</title></head><body>
<iframe title="Activity" width="1200" height="700" src="{gateway}/viewer?token_id={token_id}#token={token}"></iframe>
</body></html>"#
    );
    // The token by postMessage once the framed page loaded, not in a URL.
    let posted = format!(
        r#"<!doctype html><html><head><title>Platform</title></head><body>
<iframe title="Activity" width="1200" height="700" src="{gateway}/viewer?token_id={token_id}"></iframe>
<script>document.querySelector("iframe").addEventListener("load", function () {{
  this.contentWindow.postMessage({{ type: "activity-viewer:token", token: "{posted_token}" }}, "{gateway}");
}});</script>
</body></html>"#
    );
    let router = axum::Router::new()
        .route(
            "/posted",
            axum::routing::get(move || async move { axum::response::Html(posted) }),
        )
        .route(
            "/script",
            axum::routing::get(move || async move { axum::response::Html(script) }),
        )
        .route(
            "/frame",
            axum::routing::get(move || async move { axum::response::Html(frame) }),
        );
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    })
}

async fn origin_of(listener: &tokio::net::TcpListener) -> String {
    format!("http://{}", listener.local_addr().unwrap())
}

async fn the_viewer_embeds_in_a_page_of_an_allowed_origin_only(db: TestDb) {
    db.seed(200).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let gateway = app.url("");
    let gateway = gateway.trim_end_matches('/');
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = origin_of(&listener).await;
    let (token, id) = viewer_token(
        &app,
        &key,
        json!({ "allowedOrigins": [origin], "workspaceIds": [PRODUCTION] }),
    )
    .await;
    // Posted to the framed page: a token of the workspace's reads only.
    let (posted_token, _) = viewer_token(
        &app,
        &key,
        json!({ "allowedOrigins": [origin], "workspaceIds": [PRODUCTION], "filter": { "actions": ["read"] } }),
    )
    .await;
    let server = platform(listener, gateway, &token, &id, &posted_token);
    let expected = newest(&app, &key, 50, None).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;

    // The script, included by the platform's page, renders into its element
    // and reads the API across origins (CORS) with the token.
    browser.goto(&format!("{origin}/script")).await.unwrap();
    // The last 7 days by default: the newest of the workspace's events.
    let shown = rows_when(&browser, "the embedded table", |r| !r.is_empty()).await;
    assert!(shown
        .iter()
        .map(|(id, _)| id)
        .eq(expected.iter().take(shown.len())));
    text_shows(&browser, "h1", "Our product").await;
    // Live across origins too: the WebSocket's Origin is allowed.
    click(&browser, "[data-testid=live]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while attribute(&browser, "[data-testid=live]", "data-connected")
        .await
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the live tail never connected across origins"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    screenshot(&browser, &db, "embedded-script").await;

    // Framed by the platform: the page loads inside it.
    browser.goto(&format!("{origin}/frame")).await.unwrap();
    browser.clone().enter_frame(0).await.unwrap();
    let framed = rows_when(&browser, "the framed table", |r| !r.is_empty()).await;
    assert!(framed
        .iter()
        .map(|(id, _)| id)
        .eq(expected.iter().take(framed.len())));
    browser.clone().enter_parent_frame().await.unwrap();
    screenshot(&browser, &db, "embedded-frame").await;
    // A token by postMessage: the framed page goes on with it (the
    // workspace's reads only).
    browser.goto(&format!("{origin}/posted")).await.unwrap();
    browser.clone().enter_frame(0).await.unwrap();
    rows_when(&browser, "the framed page's table", |r| !r.is_empty()).await;
    let action = column(&browser, "Action").await;
    rows_when(&browser, "the table of a posted token", |r| {
        !r.is_empty() && r.iter().all(|(_, cells)| cells[action] == "read")
    })
    .await;
    browser.clone().enter_parent_frame().await.unwrap();
    server.abort();

    // Another origin: the same pages show nothing of the org.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = origin_of(&listener).await;
    let other = platform(listener, gateway, &token, &id, &posted_token);
    browser.goto(&format!("{elsewhere}/script")).await.unwrap();
    text_shows(&browser, "[data-testid=state]", "cannot be reached").await;
    assert!(rows(&browser).await.is_empty());
    browser.goto(&format!("{elsewhere}/frame")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    browser.clone().enter_frame(0).await.unwrap();
    assert!(
        rows(&browser).await.is_empty(),
        "the page was framed by an origin its token does not allow"
    );
    browser.clone().enter_parent_frame().await.unwrap();
    other.abort();
    browser.close().await.unwrap();
    app.stop().await;
}

/// The page's colours follow the system's preference, light or dark.
async fn the_viewer_follows_the_systems_light_or_dark_theme(db: TestDb) {
    db.seed(20).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let (token, _) = viewer_token(&app, &key, json!({ "allowedOrigins": [] })).await;
    let driver = Driver::start();
    for (switches, background, name) in [
        (&[][..], "rgb(255, 255, 255)", "light"),
        (&["--force-dark-mode"][..], "rgb(13, 17, 23)", "dark"),
    ] {
        let profile = tempfile::tempdir().unwrap();
        let browser = driver.browser_with(profile.path(), switches).await;
        browser
            .goto(&app.url(&format!("/viewer?start=2000-01-01T00:00#token={token}")))
            .await
            .unwrap();
        rows_when(&browser, "the table", |r| !r.is_empty()).await;
        let shown = browser
            .execute(
                "return getComputedStyle(document.querySelector('main')).backgroundColor;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(shown, json!(background), "{name}");
        screenshot(&browser, &db, name).await;
        browser.close().await.unwrap();
    }
}
