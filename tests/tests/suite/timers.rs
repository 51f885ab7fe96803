//! Durable timers (`kernel::timers`) against a real database (SQLite, or PostgreSQL with
//! TEST_DATABASE_URL): a job due now runs promptly and once, two runners on one database
//! (two nodes) run each job exactly once, a job of a node that died is taken again when its
//! lease runs out, failures are retried with growing pauses and kept as failed after the
//! last attempt, and a job scheduled again while it runs runs again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use catalog::contract::now;
use kernel::ApiError;
use kernel::timers::{self, Job, NewTimer, Outcome, TimerHandler, TimerOptions};
use marketplace_tests::{eventually, fresh_database};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

async fn database_at(url: &str) -> DatabaseConnection {
    let mut opts = sea_orm::ConnectOptions::new(url);
    opts.sqlx_logging(false).max_connections(8);
    let db = sea_orm::Database::connect(opts.clone()).await.unwrap();
    migrations::Migrator::up(&db, None).await.unwrap();
    // As the app does: pooled SQLite connections that saw the schema change mid-way keep the
    // old one, so the pool is opened again after migrating.
    db.close().await.unwrap();
    sea_orm::Database::connect(opts).await.unwrap()
}

fn options(lease: Duration) -> TimerOptions {
    TimerOptions {
        poll_interval: Duration::from_millis(100),
        lease,
        concurrency: 8,
    }
}

struct Running {
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Running {
    /// A runner with a lease of 2 s.
    fn start(db: &DatabaseConnection, handlers: Vec<Arc<dyn TimerHandler>>) -> Running {
        Self::start_with(db, handlers, Duration::from_secs(2))
    }
    fn start_with(
        db: &DatabaseConnection,
        handlers: Vec<Arc<dyn TimerHandler>>,
        lease: Duration,
    ) -> Running {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        timers::start(
            db.clone(),
            handlers,
            options(lease),
            cancel.clone(),
            &tracker,
        );
        Running { cancel, tracker }
    }
    async fn stop(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(Duration::from_secs(10), self.tracker.wait())
            .await
            .expect("the runner stops");
    }
}

type Runs = Arc<Mutex<Vec<(String, Instant)>>>;

/// A handler of `kind` that records each run's key and answers `outcome(attempt)`.
fn recorder(
    kind: &'static str,
    outcome: impl Fn(&Job) -> Outcome + Send + Sync + 'static,
) -> (Arc<dyn TimerHandler>, Runs) {
    let runs: Runs = Arc::default();
    let r = runs.clone();
    let outcome = Arc::new(outcome);
    let h = timers::handler(kind, move |job: Job| {
        let (r, outcome) = (r.clone(), outcome.clone());
        async move {
            r.lock().unwrap().push((job.key.clone(), Instant::now()));
            Ok::<_, ApiError>(outcome(&job))
        }
    });
    (h, runs)
}

async fn schedule(db: &DatabaseConnection, kind: &'static str, key: &str, in_ms: i64) {
    timers::schedule(
        db,
        NewTimer {
            kind,
            key: key.to_owned(),
            payload: json!({ "key": key }),
            run_at: now() + chrono::Duration::milliseconds(in_ms),
        },
    )
    .await
    .unwrap();
}

async fn rows(db: &DatabaseConnection) -> u64 {
    timers::entity::Entity::find().count(db).await.unwrap()
}

#[tokio::test]
async fn a_job_due_now_runs_within_a_second_once_and_is_deleted() {
    let db = database_at(&fresh_database().await).await;
    let (h, runs) = recorder("test.now", |_| Outcome::Done);
    let running = Running::start(&db, vec![h]);

    let scheduled = Instant::now();
    schedule(&db, "test.now", "a", 0).await;
    eventually(Duration::from_secs(5), || async {
        (!runs.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .expect("the job runs");
    let ran = runs.lock().unwrap()[0].1;
    assert!(
        ran - scheduled < Duration::from_millis(1200),
        "ran after {:?}",
        ran - scheduled
    );
    eventually(Duration::from_secs(5), || async {
        (rows(&db).await == 0).then_some(())
    })
    .await
    .expect("a finished job is deleted");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runs.lock().unwrap().len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn scheduling_the_same_key_twice_keeps_one_job_at_the_earlier_time() {
    let db = database_at(&fresh_database().await).await;
    schedule(&db, "test.dup", "k", 60_000).await;
    schedule(&db, "test.dup", "k", 1_000).await;
    schedule(&db, "test.dup", "k", 120_000).await;
    let all = timers::entity::Entity::find().all(&db).await.unwrap();
    assert_eq!(all.len(), 1);
    let wait = all[0].run_at - now();
    assert!(
        wait <= chrono::Duration::milliseconds(1_000) && wait > chrono::Duration::zero(),
        "the earliest time is kept: {wait}"
    );
    assert_eq!(all[0].payload, json!({ "key": "k" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_database_run_every_job_exactly_once() {
    let url = fresh_database().await;
    let (db_a, db_b) = (database_at(&url).await, database_at(&url).await);
    let (ha, runs_a) = recorder("test.once", |_| Outcome::Done);
    let (hb, runs_b) = recorder("test.once", |_| Outcome::Done);
    let total = 200;
    for i in 0..total {
        schedule(&db_a, "test.once", &format!("job-{i}"), 0).await;
    }
    // A lease far longer than a run: this is about disjoint claims, not lost leases (two
    // SQLite pools on one file wait on each other's locks for a while).
    let a = Running::start_with(&db_a, vec![ha], Duration::from_secs(30));
    let b = Running::start_with(&db_b, vec![hb], Duration::from_secs(30));
    eventually(Duration::from_secs(30), || async {
        (rows(&db_a).await == 0).then_some(())
    })
    .await
    .expect("every job runs");
    a.stop().await;
    b.stop().await;
    let mut keys: Vec<String> = runs_a
        .lock()
        .unwrap()
        .iter()
        .chain(runs_b.lock().unwrap().iter())
        .map(|(k, _)| k.clone())
        .collect();
    let ran = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "every job ran");
    assert_eq!(ran, total, "no job ran twice");
    if marketplace_tests::engine() == "postgres" {
        assert!(
            !runs_a.lock().unwrap().is_empty() && !runs_b.lock().unwrap().is_empty(),
            "both nodes claimed jobs"
        );
    }
}

#[tokio::test]
async fn a_job_of_a_node_that_died_runs_again_once_its_lease_has_run_out() {
    let url = fresh_database().await;
    let db = database_at(&url).await;
    schedule(&db, "test.lease", "j", 0).await;

    // Node A claims the job and dies in the middle of it (its runtime is dropped with it).
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let url_a = url.clone();
    let node_a = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let db = database_at(&url_a).await;
            let started = Arc::new(Mutex::new(Some(started_tx)));
            let h = timers::handler("test.lease", move |_job: Job| {
                let started = started.clone();
                async move {
                    if let Some(tx) = started.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    std::future::pending::<()>().await;
                    Ok::<_, ApiError>(Outcome::Done)
                }
            });
            let _running = Running::start(&db, vec![h]);
            // Until the handler has started; then this thread returns and drops the runtime.
            tokio::task::spawn_blocking(|| ()).await.unwrap();
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let row = timers::entity::Entity::find().one(&db).await.unwrap();
                if row.is_some_and(|r| r.lease_id.is_some()) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return;
                }
            }
        });
        rt.shutdown_background();
    });
    started_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("node A starts the job");
    node_a.join().unwrap();
    let died = Instant::now();

    let (h, runs) = recorder("test.lease", |_| Outcome::Done);
    let b = Running::start(&db, vec![h]);
    eventually(Duration::from_secs(10), || async {
        (!runs.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .expect("node B takes the job after the lease");
    let waited = runs.lock().unwrap()[0].1 - died;
    assert!(
        waited >= Duration::from_millis(1000),
        "not before the lease ran out (took it after {waited:?})"
    );
    eventually(Duration::from_secs(5), || async {
        (rows(&db).await == 0).then_some(())
    })
    .await
    .expect("then it is done");
    b.stop().await;
}

/// Fails every attempt, with pauses of 200 ms doubling; 4 attempts.
struct Failing {
    runs: Runs,
}

#[async_trait::async_trait]
impl TimerHandler for Failing {
    fn kind(&self) -> &'static str {
        "test.fail"
    }
    fn max_attempts(&self) -> u32 {
        4
    }
    fn backoff(&self, attempt: u32) -> Duration {
        timers::backoff(Duration::from_millis(200), Duration::from_secs(5), attempt)
    }
    async fn run(&self, job: &Job) -> Result<Outcome, ApiError> {
        self.runs
            .lock()
            .unwrap()
            .push((job.key.clone(), Instant::now()));
        Err(ApiError::Internal(format!(
            "attempt {} failed",
            job.attempt
        )))
    }
}

#[tokio::test]
async fn a_failing_job_is_retried_with_growing_pauses_then_kept_as_failed_and_can_be_retried() {
    let db = database_at(&fresh_database().await).await;
    let runs: Runs = Arc::default();
    let running = Running::start(&db, vec![Arc::new(Failing { runs: runs.clone() })]);
    schedule(&db, "test.fail", "f", 0).await;

    let failed = eventually(Duration::from_secs(15), || async {
        let failed = timers::failed(&db, 10).await.unwrap();
        (!failed.is_empty()).then_some(failed)
    })
    .await
    .expect("kept as failed after the last attempt");
    assert_eq!(failed[0].attempts, 4);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("attempt 4 failed")
    );
    let times: Vec<Instant> = runs.lock().unwrap().iter().map(|r| r.1).collect();
    assert_eq!(times.len(), 4, "no attempt after the last one");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_millis(200), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(400), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(800), "{gaps:?}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(runs.lock().unwrap().len(), 4, "a failed job waits");

    assert!(timers::retry_failed(&db, failed[0].id).await.unwrap());
    eventually(Duration::from_secs(5), || async {
        (runs.lock().unwrap().len() >= 5).then_some(())
    })
    .await
    .expect("retried when asked");
    running.stop().await;
}

#[tokio::test]
async fn a_job_scheduled_again_while_it_runs_runs_again_and_at_answers_wait() {
    let db = database_at(&fresh_database().await).await;
    let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
    let runs: Runs = Arc::default();
    let r = runs.clone();
    let h = timers::handler("test.again", move |job: Job| {
        let (r, mut gate) = (r.clone(), gate_rx.clone());
        async move {
            let n = {
                let mut runs = r.lock().unwrap();
                runs.push((job.key.clone(), Instant::now()));
                runs.len()
            };
            if n == 1 {
                let _ = gate.wait_for(|open| *open).await;
                return Ok::<_, ApiError>(Outcome::Done);
            }
            if n == 2 {
                return Ok(Outcome::At(now() + chrono::Duration::milliseconds(300)));
            }
            Ok(Outcome::Done)
        }
    });
    let running = Running::start(&db, vec![h]);
    schedule(&db, "test.again", "x", 0).await;
    eventually(Duration::from_secs(5), || async {
        (!runs.lock().unwrap().is_empty()).then_some(())
    })
    .await
    .expect("first run starts");
    schedule(&db, "test.again", "x", 0).await;
    gate_tx.send(true).unwrap();
    eventually(Duration::from_secs(5), || async {
        (runs.lock().unwrap().len() >= 3).then_some(())
    })
    .await
    .expect("it runs again, then once more after the time it asked for");
    let times: Vec<Instant> = runs.lock().unwrap().iter().map(|r| r.1).collect();
    assert!(times[2] - times[1] >= Duration::from_millis(300));
    eventually(Duration::from_secs(5), || async {
        (rows(&db).await == 0).then_some(())
    })
    .await
    .expect("done at last");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(runs.lock().unwrap().len(), 3);
    running.stop().await;
}

/// The admin's view of failed jobs (mail failures among them): listed with their error, and
/// made due again on request; admins only.
#[tokio::test]
async fn admins_list_failed_jobs_and_make_one_due_again() {
    let app = marketplace_tests::TestApp::spawn().await;
    let db = database_at(&app.database_url).await;
    schedule(&db, "test.admin", "k", 0).await;
    // As if its last attempt had failed (no node of this app runs `test.admin`).
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(
        "UPDATE timers SET failed_at = created_at, attempts = 20, last_error = 'relay down' \
         WHERE kind = 'test.admin'",
    )
    .await
    .unwrap();
    let admin = app.admin().await;
    let buyer = app.buyer().await;

    assert_eq!(
        app.get("/api/admin/failed-jobs", Some(&buyer.token))
            .await
            .status,
        403
    );
    let listed = app
        .get("/api/admin/failed-jobs", Some(&admin.token))
        .await
        .expect(200);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["kind"], "test.admin");
    assert_eq!(items[0]["attempts"], 20);
    assert_eq!(items[0]["lastError"], "relay down");
    let id = items[0]["id"].as_str().unwrap().to_owned();

    let path = format!("/api/admin/failed-jobs/{id}/retry");
    assert_eq!(
        app.post(&path, Some(&buyer.token), json!({})).await.status,
        403
    );
    assert_eq!(
        app.post(&path, Some(&admin.token), json!({})).await.status,
        204
    );
    let row = timers::entity::Entity::find()
        .filter(timers::entity::Column::Kind.eq("test.admin"))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.failed_at.is_none() && row.attempts == 0);
    assert!(row.run_at <= now());
    assert_eq!(
        app.post(&path, Some(&admin.token), json!({})).await.status,
        404,
        "not failed any more"
    );
    let listed = app
        .get("/api/admin/failed-jobs", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(listed["items"], json!([]));
}
