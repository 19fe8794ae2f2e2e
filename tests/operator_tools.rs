//! The operator's tools against a deployed-like stack on moto (table, stream,
//! EventBridge bus, SQS) and against embedded dynoxide: `replay` of a 10,000
//! event window interrupted and resumed, an empty window, an unknown table, a
//! malformed dead letter kept while a good one is redriven, and `status`.

// A panic is how these tests fail.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use clap::Parser;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use outbox_application::ports::{
    DeadLetter, DeadLetterPayload, DeadLetterQueue, Inbox, LetterSource, RandomIds, SystemClock,
};
use outbox_application::{
    CommandPolicy, CommandService, EventEnvelope, EventId, RecordIdentity, RequestMeta,
    SequenceNumber, Target,
};
use outbox_bootstrap::local::{redrive, replay, status, Cli, Command, LocalError};
use outbox_dynamodb::items::outbox_item;
use outbox_dynamodb::{create_tables, TableLayout};
use outbox_memory::MemoryStore;
use outbox_seeds_domain::repair::{Repair, RepairCommand};
use outbox_sqs::SqsDeadLetterQueue;
use outbox_tests::{line_item, moto, open_repair};

/// Repairs of five events each: 10,000 events.
const REPAIRS: usize = 2_000;

fn parse(args: &[&str]) -> Command {
    let line = ["outbox-local"].iter().chain(args);
    Cli::parse_from(line).command
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap()
}

/// `repairs` repairs' outbox events (five each), occurred now.
async fn outbox_events(repairs: usize) -> Vec<EventEnvelope> {
    let store = MemoryStore::new();
    let commands = CommandService::new(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        Arc::new(RandomIds),
        CommandPolicy::default(),
    );
    let meta = RequestMeta::default();
    for n in 0..repairs {
        let opened = commands
            .execute::<Repair>(Target::New, &open_repair(&format!("c{n}")), &meta)
            .await
            .unwrap();
        let id = Target::Existing(opened.aggregate.aggregate_id);
        for command in [
            RepairCommand::StartWork,
            line_item(100),
            line_item(200),
            RepairCommand::CompleteRepair,
        ] {
            commands
                .execute::<Repair>(id, &command, &meta)
                .await
                .unwrap();
        }
    }
    store.outbox()
}

/// Writes `events` as outbox items of `layout`, 25 at a time.
async fn write_outbox(
    dynamodb: &aws_sdk_dynamodb::Client,
    layout: &TableLayout,
    events: &[EventEnvelope],
) {
    for chunk in events.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|event| {
                let item = outbox_item(
                    event,
                    layout.outbox_retention,
                    &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
                )
                .unwrap();
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        while !requests.is_empty() {
            let output = dynamodb
                .batch_write_item()
                .request_items(layout.outbox_table(), requests)
                .send()
                .await
                .unwrap();
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(layout.outbox_table()))
                .unwrap_or_default();
        }
    }
}

/// The embedded server on the data file at `data`, its clients, and the
/// tables of `outbox-local` created there.
async fn tables_in_data_file(
    data: &std::path::Path,
) -> (
    outbox_bootstrap::embedded::EmbeddedDynamo,
    outbox_bootstrap::clients::LocalClients,
    TableLayout,
) {
    let server = outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(data))
        .await
        .unwrap();
    let clients = outbox_bootstrap::clients::LocalClients::new(&server.endpoint());
    let layout = TableLayout::single_table(
        "outbox-local",
        outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
    );
    create_tables(&clients.dynamodb, &layout).await.unwrap();
    (server, clients, layout)
}

/// The tables of `outbox-local` in the data file at `data`, with the outbox
/// events of `repairs` repairs written and not relayed; a little before they
/// were written, and the events.
async fn outbox_in_data_file(
    data: &std::path::Path,
    repairs: usize,
) -> (OffsetDateTime, Vec<EventEnvelope>) {
    let (server, clients, layout) = tables_in_data_file(data).await;
    let started = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let events = outbox_events(repairs).await;
    write_outbox(&clients.dynamodb, &layout, &events).await;
    server.stop().await.unwrap();
    (started, events)
}

/// Every event id a queue holds, deleting as it reads, until it stays empty.
async fn drain_queue(
    clients: &outbox_bootstrap::clients::LocalClients,
    url: &str,
) -> (BTreeSet<EventId>, usize) {
    let mut ids = BTreeSet::new();
    let mut messages = 0;
    let mut empty = 0;
    while empty < 3 {
        let read = receive_and_delete(clients, url, &mut ids).await;
        messages += read;
        empty = if read == 0 { empty + 1 } else { 0 };
    }
    (ids, messages)
}

/// One receive of up to 10 messages, deleted at once; how many there were.
async fn receive_and_delete(
    clients: &outbox_bootstrap::clients::LocalClients,
    url: &str,
    ids: &mut BTreeSet<EventId>,
) -> usize {
    let output = clients
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    if output.messages().is_empty() {
        return 0;
    }
    let mut batch = clients.sqs.delete_message_batch().queue_url(url);
    for (n, message) in output.messages().iter().enumerate() {
        let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        let envelope: EventEnvelope = serde_json::from_value(event["detail"].clone()).unwrap();
        ids.insert(envelope.event_id);
        batch = batch.entries(
            aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(n.to_string())
                .receipt_handle(message.receipt_handle().unwrap())
                .build()
                .unwrap(),
        );
    }
    batch.send().await.unwrap();
    output.messages().len()
}

/// A consumer of `url` running until `stop` is set, then reading the queue empty:
/// moto's SQS slows down with every message it holds, as no real queue does.
fn consume_queue(
    clients: outbox_bootstrap::clients::LocalClients,
    url: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<(BTreeSet<EventId>, usize)> {
    tokio::spawn(async move {
        let mut ids = BTreeSet::new();
        let mut messages = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let read = receive_and_delete(&clients, &url, &mut ids).await;
            messages += read;
            if read == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let (rest, more) = drain_queue(&clients, &url).await;
        ids.extend(rest);
        (ids, messages + more)
    })
}

/// A deployed-like stack on moto: tables, a bus with a queue for completed
/// repairs (a fifth of the events: moto's queues slow down with every message
/// they hold), a DLQ.
struct MotoStack {
    clients: outbox_bootstrap::clients::LocalClients,
    endpoint: String,
    layout: TableLayout,
    bus: String,
    queue: String,
    dead_letters: String,
}

impl MotoStack {
    async fn new() -> Self {
        let clients = moto::clients();
        let endpoint = std::env::var("MOTO_ENDPOINT").unwrap();
        let layout = TableLayout::single_table(
            moto::unique("ops"),
            outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources(),
        );
        create_tables(&clients.dynamodb, &layout).await.unwrap();
        let bus = moto::bus(&clients, "ops").await;
        let pattern = json!({
            "source": [outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources().source_of("Repair")],
            "detail-type": [outbox_seeds_domain::repair::RepairEvent::REPAIR_COMPLETED],
        });
        let queue = moto::subscribed_queue(&clients, &bus, "ops-repairs", &pattern).await;
        // Consumers delete what they read: no message may come back under them.
        clients
            .sqs
            .set_queue_attributes()
            .queue_url(&queue)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "300",
            )
            .send()
            .await
            .unwrap();
        let dead_letters = moto::queue(&clients, "ops-dlq").await;
        Self {
            clients,
            endpoint,
            layout,
            bus,
            queue,
            dead_letters,
        }
    }

    /// `command` and its flags, then this stack's endpoint, table, bus and DLQ.
    fn args<'a>(&'a self, command: &[&'a str]) -> Vec<&'a str> {
        let mut args = command.to_vec();
        args.extend([
            "--endpoint-url",
            &self.endpoint,
            "--table",
            &self.layout.table,
            "--event-bus-name",
            &self.bus,
            "--dead-letter-queue-url",
            &self.dead_letters,
        ]);
        args
    }
}

fn position_file() -> PathBuf {
    std::env::temp_dir().join(format!("outbox-replay-{}.position", uuid::Uuid::now_v7()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_on_moto_republishes_a_10000_event_window_and_resumes_after_an_interruption() {
    let stack = MotoStack::new().await;
    let started = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let events = outbox_events(REPAIRS).await;
    write_outbox(&stack.clients.dynamodb, &stack.layout, &events).await;
    let ended = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let all: BTreeSet<EventId> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(all.len(), REPAIRS * 5);
    let completed: BTreeSet<EventId> = events
        .iter()
        .filter(|e| e.event_type == outbox_seeds_domain::repair::RepairEvent::REPAIR_COMPLETED)
        .map(|e| e.event_id)
        .collect();

    let (from, to) = (rfc3339(started), rfc3339(ended));
    let position = position_file();
    let position_arg = position.display().to_string();
    let window = [
        "replay",
        "--from",
        &from,
        "--to",
        &to,
        "--position-file",
        &position_arg,
    ];
    let Command::Replay(dry) = parse(&stack.args(&[&window[..], &["--dry-run"]].concat())) else {
        unreachable!()
    };
    let counted = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &dry,
    )
    .await
    .unwrap();
    assert_eq!(
        (counted.progress.events, counted.progress.published),
        (all.len(), 0)
    );
    assert!(!position.exists(), "a dry run keeps no position");
    let told = counted.to_string();
    assert!(
        told.starts_with(&format!("dry run: {} events", all.len()))
            && told.contains("nothing was published")
            && !told.contains("replayed "),
        "a dry run does not say it replayed: {told}"
    );

    // Four consumers keep moto's queue short.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            consume_queue(
                stack.clients.clone(),
                stack.queue.clone(),
                Arc::clone(&stop),
            )
        })
        .collect();

    // Interrupted once its position file shows progress, as Ctrl-C would.
    let Command::Replay(first) = parse(&stack.args(&window)) else {
        unreachable!()
    };
    let clock = Instant::now();
    let interrupted = tokio::spawn(async move {
        replay::replay(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            &first,
        )
        .await
    });
    while !position.exists() {
        assert!(
            !interrupted.is_finished(),
            "the replay ended before it could be interrupted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !interrupted.is_finished(),
        "the replay ended before it could be interrupted"
    );
    interrupted.abort();
    let _ = interrupted.await;
    let saved = std::fs::read_to_string(&position).unwrap();
    assert!(
        saved.contains(&from),
        "the position names its window: {saved}"
    );

    // The same window again with --resume: it starts where the first stopped.
    let Command::Replay(resume) = parse(&stack.args(&[&window[..], &["--resume"]].concat())) else {
        unreachable!()
    };
    let resumed = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &resume,
    )
    .await
    .unwrap();
    let elapsed = clock.elapsed();
    assert!(
        resumed.progress.events > 0 && resumed.progress.events < all.len(),
        "{resumed}"
    );
    assert_eq!(resumed.progress.dead_lettered, 0, "{resumed}");
    assert!(!position.exists(), "a finished replay removes its position");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut received = BTreeSet::new();
    let mut messages = 0;
    for consumer in consumers {
        let (ids, read) = consumer.await.unwrap();
        received.extend(ids);
        messages += read;
    }
    let missing = completed.difference(&received).count();
    assert_eq!(
        missing, 0,
        "completed repairs of the window that never reached the bus"
    );
    assert_eq!(
        received.len(),
        completed.len(),
        "nothing else reached the queue"
    );
    assert!(
        messages <= completed.len() + 100,
        "at most the interrupted pages come twice: {messages}"
    );
    eprintln!(
        "replay on moto: {} events over two runs in {elapsed:?} ({:.0} events/s resumed run)",
        all.len(),
        resumed.rate
    );

    // A resume of another window is refused; so is a window that ends before it starts.
    std::fs::write(&position, saved).unwrap();
    let other = rfc3339(ended + time::Duration::hours(1));
    let Command::Replay(mismatched) = parse(&stack.args(&[
        "replay",
        "--from",
        &from,
        "--to",
        &other,
        "--position-file",
        &position_arg,
        "--resume",
    ])) else {
        unreachable!()
    };
    let refused = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &mismatched,
    )
    .await
    .unwrap_err();
    assert!(refused.to_string().contains("another window"), "{refused}");
    let _ = std::fs::remove_file(&position);
    let Command::Replay(backwards) = parse(&stack.args(&["replay", "--from", &to, "--to", &from]))
    else {
        unreachable!()
    };
    assert!(matches!(
        replay::replay(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            &backwards
        )
        .await,
        Err(LocalError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_on_moto_name_an_unknown_table_count_an_empty_window_and_keep_a_malformed_letter()
{
    let stack = MotoStack::new().await;

    let Command::Status(unknown) = parse(&[
        "status",
        "--endpoint-url",
        &stack.endpoint,
        "--table",
        "no-such-table",
    ]) else {
        unreachable!()
    };
    let error = status::status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &unknown,
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(&error, LocalError::UnknownTable(t) if t == "no-such-table"),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "table no-such-table does not exist (check --table or TABLE_NAME, and the region)"
    );

    let events = outbox_events(2).await;
    write_outbox(&stack.clients.dynamodb, &stack.layout, &events).await;
    let (from, to) = ("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z");
    let Command::Replay(empty) = parse(&stack.args(&[
        "replay",
        "--from",
        from,
        "--to",
        to,
        "--position-file",
        &position_file().display().to_string(),
    ])) else {
        unreachable!()
    };
    let nothing = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &empty,
    )
    .await
    .unwrap();
    assert_eq!(
        (nothing.progress.events, nothing.progress.published),
        (0, 0)
    );

    // The DLQ holds a letter the bus refused once, and a message that is no letter.
    let letters = SqsDeadLetterQueue::new(stack.clients.sqs.clone(), &stack.dead_letters);
    // A completed repair: the event the stack's queue subscribes to.
    let refused = events
        .iter()
        .find(|e| e.event_type == outbox_seeds_domain::repair::RepairEvent::REPAIR_COMPLETED)
        .unwrap()
        .clone();
    letters
        .send(DeadLetter::new(
            LetterSource::StreamRecord {
                sequence: SequenceNumber::new("100"),
            },
            "the bus refused the entry: InternalFailure",
            4,
            DeadLetterPayload::Event {
                envelope: refused.clone(),
            },
            RecordIdentity::default(),
        ))
        .await
        .unwrap();
    stack
        .clients
        .sqs
        .send_message()
        .queue_url(&stack.dead_letters)
        .message_body("{\"not\": \"a letter\"")
        .send()
        .await
        .unwrap();

    let Command::Status(before) = parse(&stack.args(&["status"])) else {
        unreachable!()
    };
    let before = status::status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &before,
    )
    .await
    .unwrap();
    assert_eq!(before.dead_letters, 2, "{before}");
    assert!(before.oldest_letter_seconds.is_some(), "{before}");
    assert!(before.lagging(), "nothing relayed the stream yet: {before}");

    let Command::Redrive(listed) = parse(&stack.args(&["redrive", "--list"])) else {
        unreachable!()
    };
    let listed = redrive::redrive(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &listed,
    )
    .await
    .unwrap();
    assert_eq!(listed.lines.len(), 2, "{listed}");
    assert!(
        listed.lines.iter().any(|l| l.contains("malformed message")),
        "{listed}"
    );
    assert!(
        listed.lines.iter().any(|l| l.contains("4 attempt(s)")),
        "{listed}"
    );

    // Listing hid them for a while; redrive once they are visible again.
    tokio::time::sleep(Duration::from_secs(
        u64::try_from(outbox_sqs::READ_HIDES_SECONDS).unwrap() + 1,
    ))
    .await;
    let Command::Redrive(all) = parse(&stack.args(&["redrive", "--all"])) else {
        unreachable!()
    };
    let redriven = redrive::redrive(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &all,
    )
    .await
    .unwrap();
    assert_eq!(
        (redriven.summary.accepted, redriven.summary.malformed),
        (1, 1),
        "{redriven}"
    );
    let (received, _) = drain_queue(&stack.clients, &stack.queue).await;
    assert_eq!(received, BTreeSet::from([refused.event_id]));
    let Command::Status(after) = parse(&stack.args(&["status"])) else {
        unreachable!()
    };
    let after = status::status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &after,
    )
    .await
    .unwrap();
    assert_eq!(
        after.dead_letters, 1,
        "only the malformed message is left: {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_on_embedded_dynoxide_reaches_the_local_consumers_once() {
    let data = std::env::temp_dir().join(format!("outbox-replay-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    // `serve` creates the tables; the operator's tools never do.
    let Command::Replay(early) = parse(&[
        "replay",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-02T00:00:00Z",
        "--data",
        &data_arg,
    ]) else {
        unreachable!()
    };
    let early_replay = || async {
        replay::replay(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            &early,
        )
        .await
    };
    // A path where no data file is: named, and not created.
    let refused = early_replay().await.unwrap_err();
    assert!(
        matches!(&refused, LocalError::NoDataFile(path) if *path == data_arg),
        "{refused}"
    );
    assert!(!data.exists(), "a mistyped --data creates no database");
    // A data file without the tables: the table is named.
    outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(&data))
        .await
        .unwrap()
        .stop()
        .await
        .unwrap();
    assert!(matches!(
        early_replay().await,
        Err(LocalError::UnknownTable(_))
    ));
    let (started, _) = outbox_in_data_file(&data, REPAIRS).await;

    let to = rfc3339(OffsetDateTime::now_utc() + time::Duration::seconds(1));
    let position = position_file().display().to_string();
    let Command::Replay(options) = parse(&[
        "replay",
        "--from",
        &rfc3339(started),
        "--to",
        &to,
        "--data",
        &data_arg,
        "--position-file",
        &position,
    ]) else {
        unreachable!()
    };
    let first = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(first.progress.published, REPAIRS * 5, "{first}");
    let consumed = first.consumed.unwrap();
    // Each repair's RepairCompleted reaches invoicing and customer
    // notification, which both call out.
    assert_eq!(
        (consumed.applied, consumed.called, consumed.duplicates),
        (0, 2 * REPAIRS, 0),
        "{first}"
    );
    let second = replay::replay(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .unwrap();
    let consumed = second.consumed.unwrap();
    assert_eq!(
        (consumed.applied, consumed.duplicates),
        (0, 2 * REPAIRS),
        "{second}"
    );
    eprintln!("replay on embedded dynoxide: {first}");
    let _ = std::fs::remove_file(&data);
}

/// A replay to the local bus killed at random instants again and again (its
/// task aborted wherever it is), then resumed each time, delivers every event
/// of the window to every consumer: its position moves only past pages the
/// consumers have. (A delivery killed inside an external call waits for its
/// claim's lease, 60 s: hence the last resume's retries.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_interrupted_again_and_again_and_resumed_delivers_every_event() {
    let data = std::env::temp_dir().join(format!("outbox-resume-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let (started, events) = outbox_in_data_file(&data, 200).await;
    let position = position_file();
    let to = rfc3339(OffsetDateTime::now_utc() + time::Duration::seconds(1));
    let options = |resume: bool| {
        let mut args = vec![
            "replay".to_owned(),
            "--from".to_owned(),
            rfc3339(started),
            "--to".to_owned(),
            to.clone(),
            "--data".to_owned(),
            data_arg.clone(),
            "--position-file".to_owned(),
            position.display().to_string(),
        ];
        if resume {
            args.push("--resume".to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let Command::Replay(options) = parse(&args) else {
            unreachable!()
        };
        options
    };
    let mut dice = fastrand::Rng::with_seed(11);
    let mut interrupted = 0;
    for _ in 0..8 {
        let resume = position.exists();
        let this_run = options(resume);
        let run = tokio::spawn(async move {
            replay::replay(
                &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
                &this_run,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(dice.u64(20..400))).await;
        if run.is_finished() {
            break;
        }
        run.abort();
        let _ = run.await;
        interrupted += 1;
        // What `outbox-local replay` tells when a signal stops it.
        let told = replay::interrupted(&options(false));
        if position.exists() {
            assert!(
                told.contains("--resume") && told.contains(&position.display().to_string()),
                "{told}"
            );
        } else {
            assert!(told.contains("run it again"), "{told}");
        }
    }
    assert!(
        interrupted >= 3,
        "the replay was cut short several times: {interrupted}"
    );
    let mut finished = false;
    for _ in 0..10 {
        let resume = position.exists();
        let outcome = replay::replay(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            &options(resume),
        )
        .await;
        if outcome.is_ok() {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert!(finished, "a resumed replay ends");
    let (stored, missing) = outbox_tests::undelivered(&data).await;
    assert_eq!(stored, events.len());
    assert!(
        missing.is_empty(),
        "{} deliveries missing after {interrupted} interruptions: {missing:?}",
        missing.len()
    );
    let _ = std::fs::remove_file(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_order_shows_in_status_and_unparks_with_a_recorded_skip() {
    let data = std::env::temp_dir().join(format!("outbox-unpark-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let events = outbox_tests::order_events(uuid::Uuid::now_v7().as_u128(), 3, false);
    let aggregate = events[0].aggregate();
    let key = aggregate.to_string();
    {
        let (server, clients, layout) = tables_in_data_file(&data).await;
        // Version 1 never arrives; 2 and 3 wait past the bound and park the order.
        let inbox =
            outbox_dynamodb::DynamoInbox::new(clients.dynamodb.clone(), &layout.inbox_table);
        let tracking = outbox_application::ConsumeService::new(
            Arc::new(inbox),
            Arc::new(outbox_seeds::reactions::OrderTracking),
            Arc::new(outbox_memory::MemoryDeadLetterQueue::new()),
        );
        assert_eq!(tracking.parked_count().await.unwrap(), 0);
        for event in &events[1..] {
            let mut delivery = outbox_tests::delivery(event);
            delivery.receive_count = 5;
            tracking.consume(delivery).await.unwrap();
        }
        // The level the deployed consumer reports for its alarm, by the index.
        assert_eq!(tracking.parked_count().await.unwrap(), 1);
        let inbox =
            outbox_dynamodb::DynamoInbox::new(clients.dynamodb.clone(), &layout.inbox_table);
        assert_eq!(
            inbox.parked_count("restaurant-notification").await.unwrap(),
            0
        );
        server.stop().await.unwrap();
    }
    let Command::Status(options) = parse(&["status", "--data", &data_arg]) else {
        unreachable!()
    };
    let parked = status::status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .unwrap();
    assert_eq!(parked.parked.len(), 1, "{parked}");
    let entry = &parked.parked[0];
    assert_eq!(
        (
            entry.consumer.as_str(),
            entry.aggregate.as_str(),
            entry.missing,
            entry.held
        ),
        ("order-tracking", key.as_str(), 1, 2),
        "{parked}"
    );
    assert!(
        entry.reason.starts_with("version 1 did not arrive"),
        "{parked}"
    );
    assert!(
        parked.to_string().contains("waits for version 1, 2 held"),
        "{parked}"
    );

    // Bad input: a skip without who and why, an unordered consumer, an unknown one.
    let line = |extra: &[&str]| {
        let mut args = vec![
            "outbox-local",
            "unpark",
            "--aggregate",
            &key,
            "--data",
            &data_arg,
        ];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert!(line(&["--consumer", "order-tracking", "--skip"]).is_err());
    for (consumer, error) in [("shipping", "unordered"), ("nobody", "no consumer")] {
        let Command::Unpark(options) = line(&["--consumer", consumer]).unwrap().command else {
            unreachable!()
        };
        let refused = outbox_bootstrap::local::unpark::unpark(
            &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
            &options,
        )
        .await
        .unwrap_err();
        assert!(refused.to_string().contains(error), "{refused}");
    }
    // Without a skip nothing can move: version 1 is not there.
    let Command::Unpark(plain) = line(&["--consumer", "order-tracking"]).unwrap().command else {
        unreachable!()
    };
    let waiting = outbox_bootstrap::local::unpark::unpark(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &plain,
    )
    .await
    .unwrap();
    assert_eq!(waiting.released.applied, 0);
    assert!(
        waiting
            .to_string()
            .contains("still parked: waits for version 1"),
        "{waiting}"
    );
    // The operator gives version 1 up: recorded, and 2 and 3 follow in order.
    let Command::Unpark(skip) = line(&[
        "--consumer",
        "order-tracking",
        "--skip",
        "--by",
        "ops@example.com",
        "--why",
        "lost in the outage of 24 November",
    ])
    .unwrap()
    .command
    else {
        unreachable!()
    };
    let released = outbox_bootstrap::local::unpark::unpark(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &skip,
    )
    .await
    .unwrap();
    assert_eq!(released.released.applied, 2, "{released}");
    assert!(released.to_string().contains("unparked"), "{released}");
    let after = status::status(
        &outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()),
        &options,
    )
    .await
    .unwrap();
    assert!(after.parked.is_empty(), "{after}");
    let tracking = after
        .consumers
        .iter()
        .find(|c| c.name == "order-tracking")
        .unwrap();
    assert_eq!(tracking.effects, 2, "{after}");
    // The skip is on record beside the order's sequence.
    let server = outbox_bootstrap::embedded::EmbeddedDynamo::start(Some(&data))
        .await
        .unwrap();
    let clients = outbox_bootstrap::clients::LocalClients::new(&server.endpoint());
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
    let skip = &skips.items()[0];
    assert_eq!(skips.items().len(), 1);
    let inbox = outbox_dynamodb::DynamoInbox::new(clients.dynamodb.clone(), "outbox-local-inbox");
    assert_eq!(
        inbox.parked_count("order-tracking").await.unwrap(),
        0,
        "unparked: the level falls"
    );
    assert_eq!(skip["by"].as_s().unwrap(), "ops@example.com");
    assert_eq!(
        skip["why"].as_s().unwrap(),
        "lost in the outage of 24 November"
    );
    server.stop().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{data_arg}{suffix}"));
    }
}

/// What a hard kill of the old relay left: the stream relayed and checkpointed
/// (to a bus that lost it all), no consumer applied anything. `status` counts,
/// per consumer, the committed events it has not applied (from the outbox and
/// the inbox) with the oldest's age, and names the command that fixes it; run,
/// that command brings every consumer up to date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_what_the_consumers_never_applied_and_its_fix_fixes_it() {
    let data = std::env::temp_dir().join(format!("outbox-lost-{}.db", uuid::Uuid::now_v7()));
    let data_arg = data.display().to_string();
    let (_, events) = outbox_in_data_file(&data, 3).await;
    let (server, clients, layout) = tables_in_data_file(&data).await;
    let stream_arn = outbox_dynamodb::stream_arn(&clients.dynamodb, layout.outbox_table())
        .await
        .unwrap();
    let sources = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports()).sources();
    let lost = outbox_application::Relay::new(
        Arc::new(outbox_memory::MemoryBus::new(sources)),
        Arc::new(outbox_memory::MemoryDeadLetterQueue::new()),
    );
    let mut relay = outbox_dynamodb::StreamRelay::new(
        clients.streams.clone(),
        &stream_arn,
        outbox_dynamodb::LeaseTable::new(
            clients.dynamodb.clone(),
            &layout.checkpoint_table,
            &stream_arn,
        ),
        lost,
        outbox_dynamodb::StreamRelayOptions::default(),
    );
    while relay.poll().await.unwrap().records > 0 {}
    relay.release().await;
    server.stop().await.unwrap();

    let Command::Status(options) = parse(&["status", "--data", &data_arg]) else {
        unreachable!()
    };
    let service = outbox_seeds::service(&outbox_memory::MemoryOutside::new().ports());
    let before = status::status(&service, &options).await.unwrap();
    assert!(!before.lagging(), "the relay is caught up: {before}");
    let completed = events
        .iter()
        .filter(|e| e.event_type == "RepairCompleted")
        .count() as u64;
    for consumer in ["invoicing", "customer-notification"] {
        let found = before
            .consumers
            .iter()
            .find(|c| c.name == consumer)
            .unwrap();
        assert_eq!(found.unapplied, completed, "{consumer}: {before}");
        assert!(found.oldest_unapplied_seconds.is_some(), "{before}");
    }
    let replay_line = before
        .fixes
        .iter()
        .find(|fix| fix.starts_with("outbox-local replay"))
        .unwrap_or_else(|| panic!("a replay to run: {before}"));
    let command: Vec<&str> = replay_line
        .split("   #")
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    let position = position_file().display().to_string();
    let mut args = command.clone();
    args.extend(["--position-file", &position]);
    let Command::Replay(fix) = parse(&args) else {
        unreachable!("{replay_line}")
    };
    replay::replay(&service, &fix).await.unwrap();

    let after = status::status(&service, &options).await.unwrap();
    assert!(
        after.consumers.iter().all(|c| c.unapplied == 0),
        "every consumer up to date: {after}"
    );
    assert!(after.fixes.is_empty(), "{after}");
    let _ = std::fs::remove_file(&data);
}
