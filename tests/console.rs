//! The operator's console in a real browser: headless Chromium, driven through
//! chromedriver, opens the console over embedded dynoxide holding a letter the
//! bus refused, two poison records and a parked order; it reads the dead
//! letters by cause, redrives one cause, skips the parked order's missing
//! version with who and why, and looks an event's story up. A screenshot of
//! each view goes to `target/console-screenshots/`. A page that fails to load,
//! a JavaScript error in the browser's log, an action without effect in the
//! store, or an action taken without the session's token or from another
//! site fails the test. Without Chromium and chromedriver it fails, naming
//! the packages to install.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use clap::Parser;
use fantoccini::error::CmdError;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use outbox_application::ports::{
    DeadLetter, DeadLetterPayload, DeadLetterQueue, DeadLetterStore, LetterSource,
};
use outbox_application::{EventEnvelope, RecordIdentity, SequenceNumber};
use outbox_bootstrap::local::console::{self, ConsoleOptions};
use outbox_bootstrap::local::{Cli, Command};
use outbox_dynamodb::items::outbox_item;
use outbox_dynamodb::{create_tables, DynamoDeadLetterQueue, DynamoInbox, TableLayout};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const REFUSED: &str = "the bus refused the entry: InternalFailure";

fn service() -> outbox_application::Service {
    outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports())
}

/// Where the screenshots go: `target/console-screenshots/`.
fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the store holds before the console opens.
struct Planted {
    /// The completed repair whose letter the bus refused.
    refused: EventEnvelope,
    /// The parked order, `ORDER#…`.
    order: String,
}

/// The tables of `outbox-local` in `data`: a completed repair and an order's
/// three events in the outbox, the repair's letter the bus refused, two poison
/// records' letters, and the order parked by order tracking (its version 1
/// never delivered, 2 and 3 waiting past the bound).
async fn plant(data: &Path) -> Planted {
    let server = outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(data))
        .await
        .unwrap();
    let clients = outbox_bootstrap::clients::LocalClients::new(&server.endpoint());
    let layout = TableLayout::single_table("outbox-local", service().sources());
    create_tables(&clients.dynamodb, &layout).await.unwrap();

    // Committed now, as the command use case would stamp them.
    let now = time::OffsetDateTime::now_utc();
    let mut refused = outbox_tests::one_event_of_each_type()
        .await
        .into_iter()
        .find(|e| e.event_type == outbox_seeds_domain::repair::RepairEvent::REPAIR_COMPLETED)
        .unwrap();
    refused.occurred_at = now;
    let mut orders = outbox_tests::order_events(uuid::Uuid::now_v7().as_u128(), 3, false);
    for event in &mut orders {
        event.occurred_at = now;
    }
    let requests: Vec<WriteRequest> = std::iter::once(&refused)
        .chain(&orders)
        .map(|event| {
            let item = outbox_item(event, layout.outbox_retention, &service().sources()).unwrap();
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect();
    clients
        .dynamodb
        .batch_write_item()
        .request_items(layout.outbox_table(), requests)
        .send()
        .await
        .unwrap();

    let letters = DynamoDeadLetterQueue::new(clients.dynamodb.clone(), &layout.dead_letter_table);
    letters
        .send(DeadLetter::new(
            LetterSource::StreamRecord {
                sequence: SequenceNumber::new("100"),
            },
            REFUSED,
            3,
            DeadLetterPayload::Event {
                envelope: refused.clone(),
            },
            RecordIdentity::default(),
        ))
        .await
        .unwrap();
    for (sequence, column) in [("101", 17), ("102", 42)] {
        letters
            .send(DeadLetter::new(
                LetterSource::StreamRecord {
                    sequence: SequenceNumber::new(sequence),
                },
                format!("undecodable outbox item: expected value at line 1 column {column}"),
                1,
                DeadLetterPayload::Raw {
                    raw: format!("{{\"broken\": {column}"),
                },
                RecordIdentity::default(),
            ))
            .await
            .unwrap();
    }

    let tracking = outbox_application::ConsumeService::new(
        Arc::new(DynamoInbox::new(
            clients.dynamodb.clone(),
            &layout.inbox_table,
        )),
        Arc::new(outbox_seeds::reactions::OrderTracking),
        Arc::new(outbox_memory::MemoryDeadLetterQueue::new()),
    );
    for event in &orders[1..] {
        let mut delivery = outbox_tests::delivery(event);
        delivery.receive_count = 5;
        tracking.consume(delivery).await.unwrap();
    }
    assert_eq!(tracking.parked_count().await.unwrap(), 1);
    server.stop().await.unwrap();
    Planted {
        refused,
        order: orders[0].aggregate().to_string(),
    }
}

/// chromedriver on a free loopback port, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: the console's browser test needs Debian's `chromium` and \
                 `chromium-driver` (apt-get install -y chromium chromium-driver; scripts/test.sh \
                 installs them)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // A group of its own, the browser it starts in it: a failing test
        // stops both (see `Drop`).
        let child = Process::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A headless Chromium session, its browser log kept for [`BrowserLog`].
    async fn session(&self) -> Client {
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1600"],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let mut last = None;
        for _ in 0..50 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await
            {
                Ok(client) => return client,
                Err(error) => last = Some(error),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("chromedriver did not start a session: {last:?}");
    }
}

impl Drop for Driver {
    /// Stops chromedriver and the browser it started, even when the test
    /// failed before closing its session.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Process::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// chromedriver's browser log since the last read (its console messages and
/// script errors): `POST /session/{id}/se/log` with `{"type": "browser"}`.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// Fails on any error the browser logged since the last call.
async fn no_browser_errors(browser: &Client, when: &str) {
    let log = browser.issue_cmd(BrowserLog).await.unwrap();
    let errors: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .collect();
    assert!(
        errors.is_empty(),
        "the browser logged errors {when}: {errors:#?}"
    );
}

/// Saves a screenshot of the element `css` (the whole page for `None`).
async fn screenshot(browser: &Client, css: Option<&str>, name: &str) {
    let png = match css {
        Some(css) => browser
            .find(Locator::Css(css))
            .await
            .unwrap()
            .screenshot()
            .await
            .unwrap(),
        None => browser.screenshot().await.unwrap(),
    };
    assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    std::fs::write(screenshots().join(name), png).unwrap();
}

/// Runs `act` again when the page's refresh replaced an element under it
/// (a stale element), up to five times.
async fn on_the_live_page<F, Fut>(mut act: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), CmdError>>,
{
    for attempt in 1..=5 {
        match act().await {
            Ok(()) => return,
            Err(error) if attempt < 5 => {
                eprintln!("retrying after a refresh of the page: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// The text of the outcome page an action answered with.
async fn outcome(browser: &Client) -> String {
    browser
        .wait()
        .for_element(Locator::Css("#outcome"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Follows an outcome page's link back to the console and waits for `css` there.
async fn back(browser: &Client, css: &str) -> fantoccini::elements::Element {
    browser
        .find(Locator::Id("back"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait().for_element(Locator::Css(css)).await.unwrap()
}

/// The dead letters' causes the page shows: id, reason, count.
async fn causes(browser: &Client) -> Vec<(String, String, usize)> {
    let mut causes = Vec::new();
    for row in browser.find_all(Locator::Css("tr.cause")).await.unwrap() {
        let id = row.attr("data-cause").await.unwrap().unwrap();
        let reason = row
            .find(Locator::Css("td.reason"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let count = row
            .find(Locator::Css("td.count"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap();
        causes.push((id, reason, count));
    }
    causes
}

/// A form POST to the console with `headers`: its status.
async fn post(address: SocketAddr, path: &str, body: &str, headers: &[(&str, &str)]) -> u16 {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser_redrives_a_cause_and_unparks_with_a_recorded_skip() {
    let data = std::env::temp_dir().join(format!("outbox-console-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let planted = plant(&data).await;

    let Command::Console(options) = Cli::parse_from([
        "outbox-local",
        "console",
        "--data",
        &data_arg,
        "--port",
        "0",
        "--every",
        "1",
    ])
    .command
    else {
        unreachable!()
    };
    // Not loopback: refused unless told.
    let mut remote: ConsoleOptions = options.clone();
    remote.bind = "0.0.0.0".parse().unwrap();
    let refused = console::bind(&remote).await.unwrap_err();
    assert!(refused.to_string().contains("--allow-remote"), "{refused}");

    let listener = console::bind(&options).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        console::serve(&service(), &options, listener, async {
            let _ = stopped.await;
        })
        .await
    });
    let base = format!("http://{address}");

    let driver = Driver::start();
    let browser = driver.session().await;
    browser.goto(&base).await.unwrap();
    browser
        .wait()
        .for_element(Locator::Css("#dead-letters"))
        .await
        .unwrap();

    // The flow: four events committed, none relayed (no relay ran).
    let flow = browser
        .find(Locator::Css("#flow"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(flow.contains("4 events committed, 0 relayed"), "{flow}");
    assert!(flow.contains("behind from"), "{flow}");

    // The groups: the refused letter alone, the two poison records together.
    let mut before = causes(&browser).await;
    before.sort_by_key(|(_, _, count)| *count);
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(
        (before[0].1.as_str(), before[0].2),
        (REFUSED, 1),
        "{before:?}"
    );
    assert_eq!(
        (before[1].1.as_str(), before[1].2),
        (
            "undecodable outbox item: expected value at line # column #",
            2
        ),
        "{before:?}"
    );
    let parked = browser.find_all(Locator::Css("tr.parked")).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        parked[0].attr("data-aggregate").await.unwrap().as_deref(),
        Some(planted.order.as_str())
    );
    // The script runs and refreshes the page; the chart comes after two samples.
    browser
        .wait()
        .for_element(Locator::Css("#flow-chart polyline[data-series=committed]"))
        .await
        .unwrap();
    let mut refreshed = false;
    for _ in 0..50 {
        let state = browser
            .find(Locator::Id("refresh-state"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if state.starts_with("(live, refreshed") {
            refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(refreshed, "the script refreshed the page");
    no_browser_errors(&browser, "loading and refreshing the console").await;
    screenshot(&browser, None, "console.png").await;
    screenshot(&browser, Some("#flow"), "flow.png").await;
    screenshot(&browser, Some("#dead-letters"), "dead-letters.png").await;
    screenshot(&browser, Some("#parked"), "parked.png").await;

    // Without the token, or from another site, an action is refused and does nothing.
    let token = browser
        .find(Locator::Css("input[name=token]"))
        .await
        .unwrap()
        .attr("value")
        .await
        .unwrap()
        .unwrap();
    let poison = &before[1].0;
    let own = format!("http://{address}");
    for (body, headers) in [
        (format!("cause={poison}"), vec![]),
        (format!("cause={poison}&token=0{token}"), vec![]),
        (
            format!("cause={poison}&token={token}"),
            vec![("origin", "http://evil.example")],
        ),
        (
            format!("cause={poison}&token={token}"),
            vec![("sec-fetch-site", "cross-site"), ("origin", own.as_str())],
        ),
    ] {
        let status = post(address, "/actions/redrive", &body, &headers).await;
        assert_eq!(status, 403, "{body} {headers:?}");
    }
    let unpark_body = format!(
        "consumer=order-tracking&aggregate={}&skip=yes&by=x&why=y",
        planted.order.replace('#', "%23")
    );
    assert_eq!(
        post(address, "/actions/unpark", &unpark_body, &[]).await,
        403
    );

    // Redrive the refused letter's cause: accepted, deleted.
    let refused_cause = before[0].0.clone();
    on_the_live_page(|| async {
        browser
            .find(Locator::Css(&format!(
                "tr.cause[data-cause='{refused_cause}'] button.redrive-cause"
            )))
            .await?
            .click()
            .await
    })
    .await;
    let redriven = outcome(&browser).await;
    assert!(redriven.contains("1 accepted"), "{redriven}");
    assert!(redriven.contains("→ accepted, deleted"), "{redriven}");
    screenshot(&browser, None, "redrive-outcome.png").await;
    back(&browser, "#dead-letters").await;
    let after = causes(&browser).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].2, 2, "the poison records stay: {after:?}");
    for consumer in ["invoicing", "customer-notification"] {
        let handled = browser
            .find(Locator::Css(&format!(
                "#consumers tr[data-consumer={consumer}] td.handled"
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(handled, "1", "{consumer} handled the redriven event");
    }
    browser
        .find(Locator::Css(
            "#flow-chart polyline[data-series='applied by invoicing']",
        ))
        .await
        .unwrap();
    screenshot(&browser, Some("#flow"), "flow-after-redrive.png").await;

    // Skip the parked order's missing version, with who and why.
    on_the_live_page(|| async {
        let form = browser.find(Locator::Css("tr.parked form.skip")).await?;
        form.find(Locator::Css("input[name=by]"))
            .await?
            .send_keys("ops@example.com")
            .await?;
        form.find(Locator::Css("input[name=why]"))
            .await?
            .send_keys("lost in the outage of 24 November")
            .await?;
        form.find(Locator::Css("button.skip")).await?.click().await
    })
    .await;
    let unparked = outcome(&browser).await;
    assert!(unparked.contains("skipped: a version of"), "{unparked}");
    assert!(unparked.contains("unparked"), "{unparked}");
    screenshot(&browser, None, "unpark-outcome.png").await;
    let none = back(&browser, "#parked p.none").await;
    assert_eq!(none.text().await.unwrap(), "No aggregate is parked.");

    // The redriven event's story: in the outbox, applied by both its consumers.
    on_the_live_page(|| async {
        let input = browser
            .find(Locator::Css("#story input[name=story]"))
            .await?;
        input.clear().await?;
        input
            .send_keys(&planted.refused.event_id.to_string())
            .await?;
        browser
            .find(Locator::Css("#story button.look-up"))
            .await?
            .click()
            .await
    })
    .await;
    let row = browser
        .wait()
        .for_element(Locator::Css("#story tr.story-event"))
        .await
        .unwrap();
    let told = row.text().await.unwrap();
    for consumer in ["invoicing", "customer-notification"] {
        assert!(told.contains(&format!("{consumer}: applied")), "{told}");
    }
    assert!(told.contains("not relayed yet"), "{told}");
    screenshot(&browser, Some("#story"), "story.png").await;
    // The order's story: three events, order tracking past all of them.
    let story_url = format!("{base}/?story={}", planted.order.replace('#', "%23"));
    browser.goto(&story_url).await.unwrap();
    let rows = browser
        .find_all(Locator::Css("#story tr.story-event"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let text = row.text().await.unwrap();
        assert!(text.contains("order-tracking: applied"), "{text}");
    }
    screenshot(&browser, Some("#story"), "story-aggregate.png").await;
    no_browser_errors(&browser, "acting and telling stories").await;
    browser.close().await.unwrap();
    drop(driver);

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();

    // The store agrees with what the page said.
    let server = outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(&data))
        .await
        .unwrap();
    let clients = outbox_bootstrap::clients::LocalClients::new(&server.endpoint());
    let letters = DynamoDeadLetterQueue::new(clients.dynamodb.clone(), "outbox-local-dead-letters");
    let left = letters.read(None, 100).await.unwrap().letters;
    let left: Vec<_> = left.into_iter().map(|s| s.content.unwrap()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter()
            .all(|letter| letter.reason.starts_with("undecodable") && letter.attempts == 1),
        "the refused actions touched nothing: {left:?}"
    );
    let inbox = DynamoInbox::new(clients.dynamodb.clone(), "outbox-local-inbox");
    for consumer in ["invoicing", "customer-notification"] {
        let handled = inbox.handled_events(consumer).await.unwrap();
        assert!(handled.contains(&planted.refused.event_id), "{consumer}");
    }
    use outbox_application::ports::Inbox;
    assert!(inbox.parked().await.unwrap().is_empty());
    let skips = clients
        .dynamodb
        .scan()
        .table_name("outbox-local-inbox")
        .filter_expression("entityType = :skip")
        .expression_attribute_values(
            ":skip",
            aws_sdk_dynamodb::types::AttributeValue::S("SKIP".into()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(skips.items().len(), 1);
    let skip = &skips.items()[0];
    assert_eq!(skip["by"].as_s().unwrap(), "ops@example.com");
    assert_eq!(
        skip["why"].as_s().unwrap(),
        "lost in the outage of 24 November"
    );
    server.stop().await.unwrap();

    // The command line takes the same actions: the causes listed, one letter sent back.
    let redrive = |args: &[&str]| {
        let mut line = vec!["outbox-local", "redrive", "--data", &data_arg];
        line.extend_from_slice(args);
        let Command::Redrive(options) = Cli::parse_from(line).command else {
            unreachable!()
        };
        options
    };
    let listed = outbox_bootstrap::local::redrive::redrive(&service(), &redrive(&["--list"]))
        .await
        .unwrap();
    let shown = listed.to_string();
    assert!(
        shown.contains(&format!("cause {poison}: 2 letter(s) | stream record |")),
        "{shown}"
    );
    let letter = listed.lines[0].split(' ').nth(1).unwrap().to_owned();
    let one =
        outbox_bootstrap::local::redrive::redrive(&service(), &redrive(&["--letter", &letter]))
            .await
            .unwrap();
    assert_eq!(
        (one.summary.returned, one.summary.skipped),
        (1, 1),
        "still poison, the one letter goes back with its attempts raised: {one}"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{data_arg}{suffix}"));
    }
}
