//! GraphiQL at /graphiql, driven in a real headless Chromium (Debian's
//! `chromium` and `chromium-driver`, which scripts/test.sh installs): the page
//! loads from this server alone, its headers editor offers an X-Api-Key, and a
//! query and a subscription run with a real key and render their results.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{read, TestApp, TestDb};
use activity_gateway::domain::permission::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

on_both_backends!(graphiql_runs_a_query_and_a_subscription_in_headless_chromium);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped when dropped.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) fn start() -> Driver {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(std::path::Path::new(binary).exists(), "{binary} is missing: scripts/test.sh installs Debian's chromium and chromium-driver");
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }

    pub(crate) async fn browser(&self, profile: &std::path::Path) -> Client {
        self.browser_with(profile, &[]).await
    }

    /// A browser with more command-line switches (`--force-dark-mode`).
    pub(crate) async fn browser_with(&self, profile: &std::path::Path, more: &[&str]) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1400,900",
        ]
        .iter()
        .chain(more)
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        // Downloads land in the profile's `downloads`, without asking.
        let downloads = profile.join("downloads");
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args, "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            } }),
        );
        // chromedriver is plain HTTP on loopback: no TLS connector needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of the CodeMirror editors under `selector`, in page order.
async fn editors(browser: &Client, selector: &str) -> Vec<String> {
    let script = "return [...document.querySelectorAll(arguments[0] + ' .CodeMirror')].map(e => e.CodeMirror.getValue());";
    let value = browser
        .execute(script, vec![json!(selector)])
        .await
        .unwrap();
    serde_json::from_value(value).unwrap()
}

async fn set_editor(browser: &Client, selector: &str, text: &str) {
    let script = "document.querySelector(arguments[0] + ' .CodeMirror').CodeMirror.setValue(arguments[1]); return true;";
    browser
        .execute(script, vec![json!(selector), json!(text)])
        .await
        .unwrap();
}

/// Waits until the result pane shows JSON that `done` accepts, and returns it.
async fn rendered_result(browser: &Client, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = editors(browser, ".result-window").await.join("");
        if let Ok(value) = serde_json::from_str::<Value>(&shown) {
            if done(&value) {
                return value;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the result never rendered; the pane shows: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn click(browser: &Client, selector: &str) {
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"));
}

/// The text the element at `selector` shows (empty when there is none).
pub(crate) async fn inner_text(browser: &Client, selector: &str) -> String {
    let shown = browser
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            vec![json!(selector)],
        )
        .await
        .unwrap();
    shown.as_str().unwrap_or_default().to_owned()
}

/// Waits until the element at `selector` shows `text`.
pub(crate) async fn text_shows(browser: &Client, selector: &str, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = inner_text(browser, selector).await;
        if shown.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{selector} never showed {text}: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the query editor suggests with `query` in it and the cursor at
/// column `at` of its first line (CodeMirror's autocomplete, as Ctrl-Space).
async fn suggestions(browser: &Client, query: &str, at: u32) -> Vec<String> {
    let script =
        "const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
        cm.setValue(arguments[0]); cm.focus(); cm.setCursor({ line: 0, ch: arguments[1] });
        cm.execCommand('autocomplete'); return true;";
    browser
        .execute(script, vec![json!(query), json!(at)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = browser
            .execute(
                "return [...document.querySelectorAll('.CodeMirror-hint')].map(h => h.innerText.trim().split(/\\s/)[0]);",
                vec![],
            )
            .await
            .unwrap();
        let shown: Vec<String> = serde_json::from_value(shown).unwrap();
        if !shown.is_empty() {
            return shown;
        }
        assert!(Instant::now() < deadline, "no suggestion appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(browser: &Client) {
    browser
        .find(Locator::Css(".graphiql-execute-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn graphiql_runs_a_query_and_a_subscription_in_headless_chromium(db: TestDb) {
    db.seed(100).await;
    let key = db.key("org_acme", Role::Admin).await;
    let app = TestApp::spawn(&db.db).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let browser = driver.browser(profile.path()).await;
    let origin = format!("http://{}", app.addr);
    browser.goto(&format!("{origin}/graphiql")).await.unwrap();
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(".graphiql-execute-button"))
        .await
        .expect("GraphiQL rendered");

    // The headers editor offers the X-Api-Key header and says where a key
    // comes from; before one is in, nothing was asked of /graphql (no 401
    // greets a newcomer) and the result pane is empty.
    let headers = editors(&browser, ".graphiql-editor-tool").await;
    assert!(
        headers
            .iter()
            .any(|h| h.contains("\"X-Api-Key\"") && h.contains("serve --demo")),
        "headers editor: {headers:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let asked = browser
        .execute(
            "return performance.getEntriesByType('resource').filter(e => e.name.endsWith('/graphql')).length;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(asked, json!(0), "no request before a key");
    let shown = editors(&browser, ".result-window").await.join("");
    assert!(shown.trim().is_empty(), "{shown}");
    let headers_editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden)";
    set_editor(
        &browser,
        headers_editor,
        &json!({ "X-Api-Key": key }).to_string(),
    )
    .await;

    // Once the key is in, and only then, the schema is fetched: the Docs
    // explorer finds `ActivityConnection` and shows its fields, and the
    // query editor suggests fields as one types.
    click(&browser, "button[aria-label='Show Documentation Explorer']").await;
    let docs = ".graphiql-doc-explorer";
    text_shows(&browser, docs, "QueryRoot").await;
    click(&browser, ".graphiql-doc-explorer-search-input").await;
    browser
        .find(Locator::Css(".graphiql-doc-explorer-search-input input"))
        .await
        .unwrap()
        .send_keys("ActivityConnection")
        .await
        .unwrap();
    text_shows(
        &browser,
        "[data-cy='doc-explorer-list']",
        "ActivityConnection",
    )
    .await;
    let picked = browser
        .execute(
            "const o = [...document.querySelectorAll(\"[data-cy='doc-explorer-option']\")].find(o => o.innerText.trim() === 'ActivityConnection'); if (o) o.click(); return !!o;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(picked, json!(true), "ActivityConnection among the results");
    text_shows(&browser, docs, "totalCount").await;
    let default_query = editors(&browser, ".graphiql-query-editor").await.join("");
    let suggested = suggestions(&browser, "{ viewer { } }", 11).await;
    assert!(
        suggested.iter().any(|s| s == "principalId"),
        "{suggested:?}"
    );
    assert!(suggested.iter().any(|s| s == "org"), "{suggested:?}");
    set_editor(&browser, ".graphiql-query-editor", &default_query).await;

    // The default query runs against this server and renders.
    run(&browser).await;
    let result =
        rendered_result(&browser, |v| v["data"]["viewer"]["org"]["id"] == "org_acme").await;
    let org = &result["data"]["viewer"]["org"];
    assert_eq!(org["name"], "Acme Corporation");
    assert_eq!(
        org["activity"]["totalCount"],
        db.count_events("org_id = 'org_acme'").await
    );
    assert_eq!(org["activity"]["nodes"].as_array().unwrap().len(), 5);

    // A subscription runs over the WebSocket with the same header.
    set_editor(
        &browser,
        ".graphiql-query-editor",
        "subscription Live { activityAdded(orgId: \"org_acme\") { node { id action } } }",
    )
    .await;
    // GraphiQL reads the operation's name from the editor after a short debounce.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    run(&browser).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if app
            .metric(&key, "activity_gateway_live_subscriptions")
            .await
            == 1
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the subscription never started: {:?}",
            editors(&browser, ".result-window").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = read(
        app.client
            .post(app.url("/v1/orgs/org_acme/activity"))
            .header("X-Api-Key", &key)
            .json(&json!([{ "action": "execute" }]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["ids"][0].clone();
    let result =
        rendered_result(&browser, |v| v["data"]["activityAdded"]["node"]["id"] == id).await;
    assert_eq!(result["data"]["activityAdded"]["node"]["action"], "execute");

    // Everything the page loaded came from this server.
    let loaded = browser
        .execute(
            "return performance.getEntriesByType('resource').map(e => e.name);",
            vec![],
        )
        .await
        .unwrap();
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(
        loaded
            .iter()
            .any(|u| u.ends_with("/graphiql/graphiql.min.js")),
        "{loaded:?}"
    );
    for url in &loaded {
        assert!(
            url.starts_with(&origin) || url.starts_with(&origin.replace("http", "ws")),
            "loaded from elsewhere: {url}"
        );
    }

    // The screenshot is the test's artifact.
    let png = browser.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("graphiql-{:?}.png", db.backend).to_lowercase());
    std::fs::write(&file, &png).unwrap();
    println!("screenshot: {}", file.display());
    browser.close().await.unwrap();
    app.stop().await;
}
