//! The durable event bus against a real database (SQLite, or PostgreSQL with
//! TEST_DATABASE_URL): rollback means never delivered, commit means delivered exactly once and
//! in order to every subscriber, and a crash between commit and delivery loses nothing. A
//! fault that outlasts the retries (or a panic) becomes a dead letter that is retried until it
//! succeeds while later events flow; on PostgreSQL a side-effect subscriber runs on one node at
//! a time and a commit on one node wakes the others through NOTIFY.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::events::{EventName, SystemAnnouncement};
use kernel::bus::DispatchOptions;
use kernel::{EventBus, StoredEvent, subscriber};
use marketplace_tests::{eventually, fresh_database};
use sea_orm_migration::MigratorTrait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Seen = Arc<Mutex<Vec<StoredEvent>>>;

async fn database() -> sea_orm::DatabaseConnection {
    database_at(&fresh_database().await).await
}

/// A pool of 8 on the database at `url`, migrated.
async fn database_at(url: &str) -> sea_orm::DatabaseConnection {
    let mut opts = sea_orm::ConnectOptions::new(url);
    opts.sqlx_logging(false).max_connections(8);
    let db = sea_orm::Database::connect(opts).await.unwrap();
    migrations::Migrator::up(&db, None).await.unwrap();
    db
}

fn recorder(name: &'static str) -> (Arc<dyn kernel::Subscriber>, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let sub = subscriber(name, &EventName::ALL, move |e: StoredEvent| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(e);
            Ok(())
        }
    });
    (sub, seen)
}

/// Like [`recorder`], for a per-node subscriber (as socket delivery is).
fn node_recorder(name: &'static str) -> (Arc<dyn kernel::Subscriber>, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let sub = kernel::bus::node_subscriber(name, &EventName::ALL, move |e: StoredEvent| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(e);
            Ok(())
        }
    });
    (sub, seen)
}

struct Running {
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    fn start(bus: &EventBus, subs: Vec<Arc<dyn kernel::Subscriber>>) -> Running {
        Self::start_with(bus, subs, DispatchOptions::default().batch_size)
    }
    fn start_with(
        bus: &EventBus,
        subs: Vec<Arc<dyn kernel::Subscriber>>,
        batch_size: u64,
    ) -> Running {
        let opts = DispatchOptions {
            poll_interval: Duration::from_millis(50),
            batch_size,
            ..Default::default()
        };
        Self::start_opts(bus, subs, opts)
    }
    fn start_opts(
        bus: &EventBus,
        subs: Vec<Arc<dyn kernel::Subscriber>>,
        opts: DispatchOptions,
    ) -> Running {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        bus.start(subs, opts, cancel.clone(), &tracker);
        Running { cancel, tracker }
    }
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("subscribers stop");
    }
}

async fn announce(bus: &EventBus, message: &str) {
    let mut tx = bus.begin().await.unwrap();
    tx.publish(SystemAnnouncement {
        message: message.to_owned(),
    });
    tx.commit().await.unwrap();
}

fn messages(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|e| e.payload["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn an_event_published_in_a_transaction_that_rolls_back_is_never_delivered() {
    let bus = EventBus::new(database().await);
    let (sub, seen) = recorder("recorder");
    let running = Running::start(&bus, vec![sub]);

    let mut tx = bus.begin().await.unwrap();
    tx.publish(SystemAnnouncement {
        message: "rolled back".into(),
    });
    drop(tx);
    announce(&bus, "committed").await;

    eventually(Duration::from_secs(5), || async {
        (!seen.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .expect("the committed event arrives");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(messages(&seen), vec!["committed"]);
    assert_eq!(
        bus.read_after(0, 100).await.unwrap().len(),
        1,
        "the rolled-back event is not in the log"
    );
    running.stop().await;
}

#[tokio::test]
async fn committed_events_reach_every_subscriber_exactly_once_and_in_order_under_concurrent_writers()
 {
    let bus = EventBus::new(database().await);
    let (a, seen_a) = recorder("a");
    let (b, seen_b) = recorder("b");
    let running = Running::start(&bus, vec![a, b]);

    let writers: Vec<_> = (0..20)
        .map(|w| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    let mut tx = bus.begin().await.unwrap();
                    tx.publish(SystemAnnouncement {
                        message: format!("{w}-{i}-1"),
                    });
                    tx.publish(SystemAnnouncement {
                        message: format!("{w}-{i}-2"),
                    });
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let total = 200;
    for seen in [&seen_a, &seen_b] {
        eventually(Duration::from_secs(15), || async {
            (seen.lock().unwrap().len() >= total).then_some(())
        })
        .await
        .expect("every event delivered");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log: Vec<i64> = bus
        .read_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(log.len(), total);
    for seen in [&seen_a, &seen_b] {
        let ids: Vec<i64> = seen.lock().unwrap().iter().map(|e| e.id).collect();
        assert_eq!(
            ids, log,
            "each subscriber sees the whole log once, in id order"
        );
    }
    // The two events of one transaction stay adjacent and ordered.
    let msgs = messages(&seen_a);
    for pair in msgs.chunks(2) {
        assert_eq!(
            pair[0].strip_suffix("-1"),
            pair[1].strip_suffix("-2"),
            "{pair:?}"
        );
    }
    running.stop().await;
}

#[tokio::test]
async fn events_committed_before_a_crash_are_delivered_after_restart_and_not_again_after_that() {
    let db = database().await;
    // The process "crashed" right after commit: nothing was dispatched.
    let bus = EventBus::new(db.clone());
    announce(&bus, "one").await;
    announce(&bus, "two").await;

    let (sub, seen) = recorder("survivor");
    let running = Running::start(&bus, vec![sub]);
    eventually(Duration::from_secs(5), || async {
        (seen.lock().unwrap().len() == 2).then_some(())
    })
    .await
    .expect("both undispatched events are delivered after restart");
    assert_eq!(messages(&seen), vec!["one", "two"]);
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|e| e.name == EventName::SystemAnnouncement)
    );
    running.stop().await;

    // A second restart resumes from the durable cursor: nothing twice, only what is new.
    announce(&bus, "three").await;
    let (sub, seen2) = recorder("survivor");
    let running = Running::start(&EventBus::new(db), vec![sub]);
    eventually(Duration::from_secs(5), || async {
        (!seen2.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(messages(&seen2), vec!["three"]);
    running.stop().await;
}

#[tokio::test]
async fn a_failing_subscriber_is_retried_and_does_not_hold_back_the_others() {
    let bus = EventBus::new(database().await);
    let attempts = Arc::new(Mutex::new(0u32));
    let a2 = attempts.clone();
    let flaky = subscriber("flaky", &EventName::ALL, move |_e: StoredEvent| {
        let a = a2.clone();
        async move {
            let mut n = a.lock().unwrap();
            *n += 1;
            if *n < 3 {
                Err(kernel::ApiError::internal("transient"))
            } else {
                Ok(())
            }
        }
    });
    let (steady, seen) = recorder("steady");
    let running = Running::start(&bus, vec![flaky, steady]);
    announce(&bus, "x").await;
    eventually(Duration::from_secs(5), || async {
        (*attempts.lock().unwrap() >= 3).then_some(())
    })
    .await
    .expect("the failing handler is retried until it succeeds");
    assert_eq!(messages(&seen), vec!["x"]);
    running.stop().await;
}

#[tokio::test]
async fn a_killed_server_delivers_its_committed_events_after_restart() {
    // Black-box: the real app is killed (task aborted, no graceful stop) and started again on
    // the same database; the subscribers' cursors pick up whatever the log holds beyond them.
    let mut app = marketplace_tests::TestApp::spawn().await;
    let db = app.db().await;
    app.kill().await;
    let bus = EventBus::new(db.clone());
    announce(&bus, "written while the server was down").await;
    let app = marketplace_tests::TestApp::start(app.env.clone()).await;
    use sea_orm::{ConnectionTrait, Statement};
    let latest = bus.latest_id().await.unwrap();
    let caught_up = eventually(Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n, MIN(last_event_id) AS m FROM subscriber_cursors",
                ))
                .await
                .ok()??;
            let n: i64 = row.try_get("", "n").ok()?;
            let min: i64 = row.try_get("", "m").ok()?;
            (n > 0 && min >= latest).then_some(())
        }
    })
    .await;
    assert!(
        caught_up.is_some(),
        "every registered subscriber moved past the event written while down"
    );
    drop(app);
}

#[tokio::test]
async fn an_event_this_version_does_not_know_is_skipped_not_stuck_on() {
    use kernel::bus::entity::event;
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let db = database().await;
    let bus = EventBus::new(db.clone());
    // Written by a newer version of the server (say, before a rollback).
    event::Entity::insert(event::ActiveModel {
        name: Set("future:event".into()),
        payload: Set(serde_json::json!({})),
        audience: Set(serde_json::json!({})),
        created_at: Set(catalog::contract::now()),
        ..Default::default()
    })
    .exec(&db)
    .await
    .unwrap();
    announce(&bus, "after the unknown one").await;
    let (sub, seen) = recorder("tolerant");
    // One row per read, so a read that finds only the unknown row must still move on.
    let running = Running::start_with(&bus, vec![sub], 1);
    eventually(Duration::from_secs(5), || async {
        (!seen.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .expect("the known event behind the unknown one is delivered");
    assert_eq!(messages(&seen), vec!["after the unknown one"]);
    running.stop().await;
}

/// Fast retries so a dead letter is made (and retried) within a test's seconds.
fn fast_faults() -> DispatchOptions {
    DispatchOptions {
        poll_interval: Duration::from_millis(50),
        max_attempts: 2,
        retry_backoff: Duration::from_millis(10),
        dead_letter_backoff: Duration::from_millis(200),
        dead_letter_backoff_max: Duration::from_millis(400),
        ..Default::default()
    }
}

async fn dead_letters_of(
    db: &sea_orm::DatabaseConnection,
    subscriber: &str,
) -> Vec<kernel::bus::entity::dead_letter::Model> {
    use kernel::bus::entity::dead_letter;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    dead_letter::Entity::find()
        .filter(dead_letter::Column::Subscriber.eq(subscriber))
        .all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fault_that_outlasts_the_retries_becomes_a_dead_letter_that_succeeds_once_the_fault_ends()
{
    let db = database().await;
    let bus = EventBus::new(db.clone());
    let fault = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f = fault.clone();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let fragile = subscriber("fragile", &EventName::ALL, move |e: StoredEvent| {
        let (f, s) = (f.clone(), s.clone());
        async move {
            if e.payload["message"] == "x" && f.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(kernel::ApiError::internal("the disk refuses writes"));
            }
            s.lock().unwrap().push(e);
            Ok(())
        }
    });
    let running = Running::start_opts(&bus, vec![fragile], fast_faults());
    announce(&bus, "x").await;
    announce(&bus, "y").await;
    eventually(Duration::from_secs(10), || async {
        (messages(&seen) == ["y"]).then_some(())
    })
    .await
    .expect("the event after the failing one still flows");
    let letters = dead_letters_of(&db, "fragile").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].resolved_at.is_none());
    assert!(letters[0].attempts >= 2);
    assert!(
        letters[0].last_error.contains("the disk refuses writes"),
        "{letters:?}"
    );

    fault.store(false, std::sync::atomic::Ordering::SeqCst);
    eventually(Duration::from_secs(10), || async {
        (messages(&seen) == ["y", "x"]).then_some(())
    })
    .await
    .expect("the dead letter is retried by itself and succeeds once the fault ends");
    // The handler has run; the dead letter is marked resolved right after it returns.
    eventually(Duration::from_secs(10), || async {
        let letters = dead_letters_of(&db, "fragile").await;
        letters[0].resolved_at.is_some().then_some(())
    })
    .await
    .expect("the dead letter is marked resolved");
    running.stop().await;
}

#[tokio::test]
async fn a_handler_that_panics_on_one_event_becomes_a_dead_letter_and_later_events_still_flow() {
    let db = database().await;
    let bus = EventBus::new(db.clone());
    let s: Seen = Arc::default();
    let s2 = s.clone();
    let brittle = subscriber("brittle", &EventName::ALL, move |e: StoredEvent| {
        let s = s2.clone();
        async move {
            if e.payload["message"] == "boom" {
                panic!("arithmetic overflow on a hostile amount");
            }
            s.lock().unwrap().push(e);
            Ok(())
        }
    });
    let running = Running::start_opts(&bus, vec![brittle], fast_faults());
    announce(&bus, "before").await;
    announce(&bus, "boom").await;
    announce(&bus, "after").await;
    eventually(Duration::from_secs(10), || async {
        (messages(&s) == ["before", "after"]).then_some(())
    })
    .await
    .expect("the subscriber survives the panic and handles later events");
    let letters = dead_letters_of(&db, "brittle").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].last_error.contains("panicked") && letters[0].last_error.contains("overflow"),
        "{letters:?}"
    );
    // Still alive afterwards, and the panic stays a dead letter (retried, not skipped).
    announce(&bus, "later").await;
    eventually(Duration::from_secs(10), || async {
        (messages(&s) == ["before", "after", "later"]).then_some(())
    })
    .await
    .expect("events keep flowing after the panic");
    eventually(Duration::from_secs(10), || async {
        let l = dead_letters_of(&db, "brittle").await;
        (l.len() == 1 && l[0].attempts > letters[0].attempts && l[0].resolved_at.is_none())
            .then_some(())
    })
    .await
    .expect("the dead letter is retried automatically");
    running.stop().await;
}

#[tokio::test]
async fn a_side_effect_subscriber_runs_on_one_node_and_another_takes_over_when_it_stops() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: leases exist on PostgreSQL only (SQLite is always one node)");
        return;
    }
    let db = database().await;
    // Two nodes: two buses, each with its own copy of the subscriber.
    let (node_a, node_b) = (EventBus::new(db.clone()), EventBus::new(db.clone()));
    let (sub_a, seen_a) = recorder("payouts-like");
    let (sub_b, seen_b) = recorder("payouts-like");
    let run_a = Running::start(&node_a, vec![sub_a]);
    let run_b = Running::start(&node_b, vec![sub_b]);
    for i in 0..10 {
        announce(
            if i % 2 == 0 { &node_a } else { &node_b },
            &format!("first-{i}"),
        )
        .await;
    }
    eventually(Duration::from_secs(10), || async {
        (seen_a.lock().unwrap().len() + seen_b.lock().unwrap().len() >= 10).then_some(())
    })
    .await
    .expect("the events are handled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, b) = (seen_a.lock().unwrap().len(), seen_b.lock().unwrap().len());
    assert!(
        (a, b) == (10, 0) || (a, b) == (0, 10),
        "one node handles everything: {a} / {b}"
    );
    let (holder, standby, seen_standby, seen_holder) = if a == 10 {
        (run_a, run_b, seen_b.clone(), seen_a.clone())
    } else {
        (run_b, run_a, seen_a.clone(), seen_b.clone())
    };

    let stopped = tokio::time::Instant::now();
    holder.stop().await;
    for i in 0..10 {
        announce(&node_a, &format!("second-{i}")).await;
    }
    eventually(Duration::from_secs(15), || async {
        (seen_standby.lock().unwrap().len() >= 10).then_some(())
    })
    .await
    .expect("the standby node takes the subscriber over within 15 s");
    eprintln!("takeover after {:?}", stopped.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut handled: Vec<i64> = seen_holder
        .lock()
        .unwrap()
        .iter()
        .chain(seen_standby.lock().unwrap().iter())
        .map(|e| e.id)
        .collect();
    handled.sort_unstable();
    let log: Vec<i64> = bus_ids(&node_a).await;
    assert_eq!(
        handled, log,
        "every event handled exactly once across the two nodes"
    );
    standby.stop().await;
}

async fn bus_ids(bus: &EventBus) -> Vec<i64> {
    bus.read_after(0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect()
}

#[tokio::test]
async fn a_commit_on_one_node_wakes_the_subscribers_of_another_without_waiting_for_the_poll() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: cross-node wake-up is PostgreSQL LISTEN/NOTIFY (SQLite is one node)");
        return;
    }
    let db = database().await;
    let (node_a, node_b) = (EventBus::new(db.clone()), EventBus::new(db));
    let (sub_per_node, seen) = node_recorder("sockets-like");
    let opts = DispatchOptions {
        poll_interval: Duration::from_secs(60),
        ..Default::default()
    };
    let running = Running::start_opts(&node_a, vec![sub_per_node], opts);
    // Let the first read and the listener settle, then write on the other node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    announce(&node_b, "from b").await;
    eventually(Duration::from_secs(10), || async {
        (messages(&seen) == ["from b"]).then_some(())
    })
    .await
    .expect("woken by NOTIFY (the poll is 60 s)");
    running.stop().await;
}

#[tokio::test]
async fn a_holder_whose_lease_connection_dies_stops_and_the_subscriber_carries_on_elsewhere() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: leases exist on PostgreSQL only (SQLite is always one node)");
        return;
    }
    use sea_orm::ConnectionTrait;
    let db = database().await;
    let (node_a, node_b) = (EventBus::new(db.clone()), EventBus::new(db.clone()));
    let (sub_a, seen_a) = recorder("cut-off");
    let (sub_b, seen_b) = recorder("cut-off");
    let run_a = Running::start(&node_a, vec![sub_a]);
    let run_b = Running::start(&node_b, vec![sub_b]);
    announce(&node_a, "before").await;
    eventually(Duration::from_secs(10), || async {
        (seen_a.lock().unwrap().len() + seen_b.lock().unwrap().len() == 1).then_some(())
    })
    .await
    .expect("handled by the holder");

    // The holder's machine "vanishes": PostgreSQL ends its lease session.
    let killed = db
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'marketplace leases' AND datname = current_database() \
             AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                         AND classid = 7242 AND objsubid = 2)",
        )
        .await
        .unwrap();
    assert_eq!(
        killed.rows_affected(),
        1,
        "exactly one session held the lease"
    );
    for i in 0..5 {
        announce(&node_b, &format!("after-{i}")).await;
    }
    eventually(Duration::from_secs(15), || async {
        let mut all: Vec<String> = messages(&seen_a);
        all.extend(messages(&seen_b));
        (1..=5)
            .all(|i| all.contains(&format!("after-{}", i - 1)))
            .then_some(())
    })
    .await
    .expect("a node holds the lease again within 15 s and handles what came meanwhile");
    run_a.stop().await;
    run_b.stop().await;
}

#[tokio::test]
async fn a_node_holds_all_its_leases_on_one_connection_whatever_the_number_of_subscribers() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: leases exist on PostgreSQL only (SQLite is always one node)");
        return;
    }
    use sea_orm::{ConnectionTrait, Statement};
    let db = database().await;
    let (node_a, node_b) = (EventBus::new(db.clone()), EventBus::new(db.clone()));
    let names = [
        "first-effect",
        "second-effect",
        "third-effect",
        "fourth-effect",
    ];
    let (mut subs_a, mut subs_b, mut seen) = (Vec::new(), Vec::new(), Vec::new());
    for name in names {
        let (a, seen_a) = recorder(name);
        let (b, seen_b) = recorder(name);
        subs_a.push(a);
        subs_b.push(b);
        seen.push((seen_a, seen_b));
    }
    let run_a = Running::start(&node_a, subs_a);
    let run_b = Running::start(&node_b, subs_b);
    announce(&node_a, "once").await;
    eventually(Duration::from_secs(10), || async {
        seen.iter()
            .all(|(a, b)| messages(a).len() + messages(b).len() == 1)
            .then_some(())
    })
    .await
    .expect("each subscriber handles the event on one node");

    let sessions = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE application_name = 'marketplace leases' AND datname = current_database()",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(sessions, 2, "one lease connection per node");
    for (a, b) in &seen {
        assert_eq!(messages(a).len() + messages(b).len(), 1, "handled once");
    }
    run_a.stop().await;
    run_b.stop().await;
}

/// The id-order guarantee on PostgreSQL: a transaction draws its event ids from the sequence
/// only once it holds the commit-order lock (and keeps it until its commit). Were an id drawn
/// before the lock, a transaction could hold a small id while another committed a larger one,
/// and a reader past the larger one would never see the smaller.
#[tokio::test]
async fn an_event_id_is_drawn_only_once_the_commit_order_lock_is_held() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: SQLite serializes writers by itself (no commit-order lock)");
        return;
    }
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let db = database().await;
    let bus = EventBus::new(db.clone());
    announce(&bus, "first").await;
    let first = bus.latest_id().await.unwrap();
    let last_drawn = || {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass) AS v",
                ))
                .await
                .unwrap()
                .unwrap();
            row.try_get::<i64>("", "v").unwrap()
        }
    };
    assert_eq!(last_drawn().await, first);

    // Another writer holds the lock (as if it were between its insert and its commit).
    let holder = db.begin().await.unwrap();
    holder
        .execute_unprepared("SELECT pg_advisory_xact_lock(7242001)")
        .await
        .unwrap();
    let writer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut tx = bus.begin().await.unwrap();
            for message in ["second", "third"] {
                tx.publish(SystemAnnouncement {
                    message: message.to_owned(),
                });
            }
            tx.commit().await.unwrap();
        })
    };
    let waiting = eventually(Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM pg_locks \
                     WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = 7242001",
                ))
                .await
                .ok()??;
            (row.try_get::<i64>("", "n").ok()? == 1).then_some(())
        }
    })
    .await;
    assert!(waiting.is_some(), "the writer waits for the lock");
    assert_eq!(
        last_drawn().await,
        first,
        "no id is drawn while the writer waits for the lock"
    );
    assert!(!writer.is_finished());

    holder.rollback().await.unwrap();
    writer.await.unwrap();
    let log = bus.read_after(first, 10).await.unwrap();
    let got: Vec<(i64, String)> = log
        .iter()
        .map(|e| (e.id, e.payload["message"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        got,
        vec![
            (first + 1, "second".to_owned()),
            (first + 2, "third".to_owned())
        ],
        "the transaction's events take the next ids, in publish order"
    );
}

#[tokio::test]
async fn delivery_reads_the_log_on_its_own_connections_while_the_main_pool_is_exhausted() {
    if marketplace_tests::engine() != "postgres" {
        eprintln!("skipped: the event log's own pool is PostgreSQL's (SQLite is one process)");
        return;
    }
    // This node's main pool has one connection, and a request holds it (as REST requests
    // waiting for the commit-order lock hold them under a burst of writes).
    let url = fresh_database().await;
    database_at(&url).await;
    let mut opts = sea_orm::ConnectOptions::new(url.clone());
    opts.sqlx_logging(false)
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30));
    let busy = sea_orm::Database::connect(opts).await.unwrap();
    let node = EventBus::new(busy.clone());
    let held = sea_orm::TransactionTrait::begin(&busy).await.unwrap();

    let (sockets_like, seen) = node_recorder("sockets-like");
    let running = Running::start(&node, vec![sockets_like]);
    // Another node commits an event.
    let other = EventBus::new(database_at(&url).await);
    announce(&other, "while the pool is busy").await;
    eventually(Duration::from_secs(10), || async {
        (messages(&seen) == ["while the pool is busy"]).then_some(())
    })
    .await
    .expect("delivered without a connection of the main pool");
    assert_eq!(node.latest_id().await.unwrap(), bus_ids(&other).await[0]);
    drop(held);
    running.stop().await;
}

#[tokio::test]
async fn a_subscriber_gets_only_the_events_it_declares_and_its_cursor_moves_over_the_others() {
    let bus = EventBus::new(database().await);
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let maintenance_only = subscriber(
        "maintenance-only",
        &[EventName::SystemMaintenance],
        move |e: StoredEvent| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(e);
                Ok(())
            }
        },
    );
    let running = Running::start(&bus, vec![maintenance_only]);
    announce(&bus, "not for it").await;
    let mut tx = bus.begin().await.unwrap();
    tx.publish(catalog::events::SystemMaintenance {
        message: "tonight".into(),
        starts_at: catalog::contract::now(),
    });
    tx.commit().await.unwrap();
    announce(&bus, "not for it either").await;

    let last = bus.latest_id().await.unwrap();
    eventually(Duration::from_secs(5), || async {
        use sea_orm::EntityTrait;
        let cursor = kernel::bus::entity::subscriber_cursor::Entity::find_by_id("maintenance-only")
            .one(bus.db())
            .await
            .unwrap()
            .map(|c| c.last_event_id);
        (cursor == Some(last)).then_some(())
    })
    .await
    .expect("the cursor moves over the events it does not handle");
    let names: Vec<EventName> = seen.lock().unwrap().iter().map(|e| e.name).collect();
    assert_eq!(names, vec![EventName::SystemMaintenance]);
    running.stop().await;
}
