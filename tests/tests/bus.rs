//! The durable event bus against a real database (SQLite, or PostgreSQL with
//! TEST_DATABASE_URL): rollback means never delivered, commit means delivered exactly once and
//! in order to every subscriber, and a crash between commit and delivery loses nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kernel::bus::DispatchOptions;
use kernel::events::{EventName, SystemAnnouncement};
use kernel::{EventBus, StoredEvent, subscriber};
use marketplace_tests::{eventually, fresh_database};
use sea_orm_migration::MigratorTrait;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

type Seen = Arc<Mutex<Vec<StoredEvent>>>;

async fn database() -> sea_orm::DatabaseConnection {
    let url = fresh_database().await;
    let mut opts = sea_orm::ConnectOptions::new(url);
    opts.sqlx_logging(false).max_connections(8);
    let db = sea_orm::Database::connect(opts).await.unwrap();
    migrations::Migrator::up(&db, None).await.unwrap();
    db
}

fn recorder(name: &'static str) -> (Arc<dyn kernel::Subscriber>, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let sub = subscriber(name, move |e: StoredEvent| {
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
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let opts = DispatchOptions {
            poll_interval: Duration::from_millis(50),
            batch_size,
            ..Default::default()
        };
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
    let flaky = subscriber("flaky", move |_e: StoredEvent| {
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
    app.kill();
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
        created_at: Set(kernel::contract::now()),
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
