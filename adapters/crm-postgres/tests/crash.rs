//! Crash consistency on PostgreSQL: a writer process logs batches of purchases and folds
//! profiles in a loop, and is killed with SIGKILL, again and again: at a random moment,
//! right after a batch committed (before the fold that would follow), and in the middle of
//! a fold. Afterwards every batch is stored whole or not at all, every batch the writer
//! saw committed is there, and every profile equals a rebuild from the stored history,
//! before and after folding what the killed writers left pending.
//!
//! The writer is this test binary itself, run with `CRM_CRASH_WRITER_URL` set (the test
//! `writer` does nothing otherwise). Against a throwaway cluster (skipped, with a message,
//! where none can be had unless `CRM_REQUIRE_POSTGRES=1`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use crm_core::{
    Channel, Crm, CustomerId, Interaction, InteractionKind, Money, ProfileStore, Storage, TenantId,
};
use crm_postgres::PostgresStore;
use crm_testkit::postgres::{postgres_for_tests, PostgresTarget};

const URL: &str = "CRM_CRASH_WRITER_URL";
const TENANT: &str = "CRM_CRASH_TENANT";
const CUSTOMERS: &str = "CRM_CRASH_CUSTOMERS";
const ROUND: &str = "CRM_CRASH_ROUND";
/// Rows per batch.
const ROWS: usize = 40;
/// Writers killed.
const KILLS: usize = 24;

fn batch(customers: &[CustomerId], round: usize, n: usize) -> Vec<Interaction> {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        + chrono::Duration::minutes((round * 100_000 + n) as i64);
    (0..ROWS)
        .map(|i| {
            let c = customers[(round * 7 + n * 3 + i) % customers.len()];
            let cents = ((round * 31 + n * 17 + i * 13) % 100_000) as i64;
            Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
                .at(at)
                .amount(Money::new(rust_decimal::Decimal::new(cents, 2), "EUR").unwrap())
                .key("crash", &format!("{round}-{n}-{i}"))
                .build()
                .unwrap()
        })
        .collect()
}

/// The writer: batches and folds until killed. Does nothing in a normal test run.
#[test]
fn writer() {
    let Ok(url) = std::env::var(URL) else {
        return;
    };
    let tenant: TenantId = std::env::var(TENANT).unwrap().parse().unwrap();
    let customers: Vec<CustomerId> = std::env::var(CUSTOMERS)
        .unwrap()
        .split(',')
        .map(|c| c.parse().unwrap())
        .collect();
    let round: usize = std::env::var(ROUND).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = PostgresStore::connect(&url).await.unwrap();
        let crm = Crm::new(Arc::new(store.clone()));
        for n in 0.. {
            crm.log_batch(tenant, batch(&customers, round, n))
                .await
                .unwrap();
            println!("committed {n}");
            if n % 2 == 1 {
                println!("fold");
                store.fold_profiles(tenant).await.unwrap();
                println!("folded");
            }
        }
    });
}

/// How a writer is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum When {
    /// After a random delay.
    Random,
    /// As soon as it reports a batch committed (before its fold).
    AfterCommit,
    /// As soon as it reports a fold started.
    DuringFold,
}

#[test]
fn killed_writers_leave_whole_batches_and_exact_profiles() {
    let Some(target) = postgres_for_tests() else {
        return;
    };
    let server = match &target {
        PostgresTarget::Throwaway(s) => s,
        PostgresTarget::External(_) => {
            eprintln!("the crash test needs a throwaway cluster; CRM_TEST_POSTGRES_URL is set");
            return;
        }
    };
    let url = server.connection_string("postgres");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tenant = TenantId::new();
    let store = runtime.block_on(async {
        PostgresStore::builder(&url)
            .migrate_on_connect(true)
            .connect()
            .await
            .unwrap()
    });
    let crm = Crm::new(Arc::new(store.clone()));
    let customers: Vec<CustomerId> = runtime.block_on(async {
        let mut ids = Vec::new();
        for i in 0..12 {
            let c = crm_core::Customer::person(&format!("Crash {i}"))
                .build()
                .unwrap();
            ids.push(crm.register(tenant, c).await.unwrap().id);
        }
        ids
    });
    let list = customers
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut seen_committed: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut kills: BTreeMap<When, usize> = BTreeMap::new();
    let mut rng = fastrand::Rng::with_seed(0x6b69_6c6c);
    // Writers whose last word was that a fold started: killed inside the fold.
    let mut in_fold = 0;
    for round in 0..KILLS {
        let when = [When::Random, When::AfterCommit, When::DuringFold][round % 3];
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "writer", "--nocapture", "--test-threads=1"])
            .env(URL, &url)
            .env(TENANT, tenant.to_string())
            .env(CUSTOMERS, &list)
            .env(ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Lines are read on a thread of their own, so the pipe never fills up.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let started = Instant::now();
        let limit = Duration::from_secs(60);
        // A random moment a little into the writer's work, or the line asked for: the
        // first commit or fold after a few batches, so kills land on varied states.
        let skip = rng.usize(0..4);
        let delay = Duration::from_millis(rng.u64(50..600));
        let mut matched = 0;
        let mut committed_here = Vec::new();
        let mut last = String::new();
        loop {
            assert!(
                started.elapsed() < limit,
                "round {round}: the writer did not reach the point to kill it"
            );
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => {
                    if let Some(n) = line.strip_prefix("committed ") {
                        committed_here.push(n.parse::<usize>().unwrap());
                    }
                    last.clone_from(&line);
                    let hit = match when {
                        When::Random => false,
                        When::AfterCommit => line.starts_with("committed "),
                        When::DuringFold => line == "fold",
                    };
                    if hit {
                        matched += 1;
                        if matched > skip {
                            break;
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "round {round}: the writer ended by itself: {:?}",
                        child.wait()
                    )
                }
            }
            if when == When::Random && started.elapsed() >= delay {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        // Lines already in the pipe when it was killed were printed before the kill.
        for line in rx.try_iter() {
            if let Some(n) = line.strip_prefix("committed ") {
                committed_here.push(n.parse().unwrap());
            }
            last = line;
        }
        if last == "fold" {
            in_fold += 1;
        }
        seen_committed.extend(committed_here.into_iter().map(|n| (round, n)));
        *kills.entry(when).or_default() += 1;
    }

    runtime.block_on(async {
        let storage: Arc<dyn Storage> = Arc::new(store.clone());
        let mut batches: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        let mut histories = BTreeMap::new();
        for c in &customers {
            let history = crm_testkit::conformance::full_timeline(&storage, tenant, *c, 500).await;
            for i in &history {
                let id = i.key.external_id();
                let mut parts = id.split('-').map(|p| p.parse::<usize>().unwrap());
                let (r, n) = (parts.next().unwrap(), parts.next().unwrap());
                *batches.entry((r, n)).or_default() += 1;
            }
            histories.insert(*c, history);
        }
        for (b, rows) in &batches {
            assert_eq!(*rows, ROWS, "batch {b:?} is stored whole or not at all");
        }
        for b in &seen_committed {
            assert!(
                batches.contains_key(b),
                "batch {b:?} was reported committed"
            );
        }
        let check = |stage: &'static str| {
            let store = store.clone();
            let histories = histories.clone();
            async move {
                for (c, history) in &histories {
                    assert_eq!(
                        store.get_profile(tenant, *c).await.unwrap(),
                        crm_core::Profile::rebuild(history).unwrap(),
                        "{stage}: the profile of {c} equals a rebuild"
                    );
                }
            }
        };
        check("with the deltas the writers left").await;
        let folded = store.fold_profiles(tenant).await.unwrap();
        check("after folding them").await;
        assert_eq!(
            store.fold_profiles(tenant).await.unwrap(),
            0,
            "nothing left to fold"
        );
        eprintln!(
            "killed {KILLS} writers ({kills:?}), {in_fold} of them inside a fold; {} whole \
             batches of {ROWS} stored, {} seen committed; {folded} pending deltas folded \
             afterwards",
            batches.len(),
            seen_committed.len()
        );
        assert_eq!(kills.values().sum::<usize>(), KILLS);
        assert!(batches.len() >= seen_committed.len());
    });
}
