//! Crash consistency: a writer process logs batches of purchases in a loop and is killed
//! with SIGKILL, again and again, at a random moment, right after a batch committed, or as
//! a step it announces starts (a fold, for example). Afterwards every batch must be stored
//! whole or not at all, every batch the writer saw committed must be there, and every
//! profile must equal a rebuild of the stored history.
//!
//! The writer is the adapter's test binary itself: [`kill_writers`] runs it again with the
//! test `writer_test` selected and the writer's settings in environment variables; that
//! test calls [`writer_settings`] and, when they are there, [`write_until_killed`].

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use crm_core::{Channel, Crm, CustomerId, Interaction, InteractionKind, Money, Storage, TenantId};

const TARGET: &str = "CRM_CRASH_TARGET";
const TENANT: &str = "CRM_CRASH_TENANT";
const CUSTOMERS: &str = "CRM_CRASH_CUSTOMERS";
const ROUND: &str = "CRM_CRASH_ROUND";

/// Rows in every batch the writer logs.
pub const ROWS: usize = 40;

/// What a writer process is told: where to write, for whom, and its round.
#[derive(Clone, Debug)]
pub struct WriterSettings {
    /// The adapter's connection string or database path.
    pub target: String,
    /// The tenant written to.
    pub tenant: TenantId,
    /// The customers the purchases are for.
    pub customers: Vec<CustomerId>,
    /// Which writer this is (batches of different writers never share a key).
    pub round: usize,
}

/// The settings when this process is a writer, `None` in a normal test run.
pub fn writer_settings() -> Option<WriterSettings> {
    let target = std::env::var(TARGET).ok()?;
    Some(WriterSettings {
        target,
        tenant: std::env::var(TENANT).ok()?.parse().ok()?,
        customers: std::env::var(CUSTOMERS)
            .ok()?
            .split(',')
            .map(|c| c.parse().ok())
            .collect::<Option<_>>()?,
        round: std::env::var(ROUND).ok()?.parse().ok()?,
    })
}

/// Batch `n` of writer `round`: [`ROWS`] purchases with keys `round-n-i`.
pub fn batch(customers: &[CustomerId], round: usize, n: usize) -> Vec<Interaction> {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        + chrono::Duration::minutes((round * 100_000 + n) as i64);
    (0..ROWS)
        .map(|i| {
            let c = customers[(round * 7 + n * 3 + i) % customers.len()];
            let cents = ((round * 31 + n * 17 + i * 13) % 100_000) as i64;
            Interaction::builder(c, Channel::Web, InteractionKind::Purchase)
                .at(at)
                .amount(Money::new(rust_decimal::Decimal::new(cents, 2), "EUR").expect("EUR"))
                .key("crash", &format!("{round}-{n}-{i}"))
                .build()
                .expect("a valid purchase")
        })
        .collect()
}

/// Logs batch after batch, printing `committed N` after each, and every `every` batches
/// prints `step`, runs `after` and prints `step done`; until the process is killed.
pub async fn write_until_killed<F, Fut>(
    store: Arc<dyn Storage>,
    settings: &WriterSettings,
    every: usize,
    mut after: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let crm = Crm::new(store);
    for n in 0.. {
        crm.tenant(settings.tenant)
            .interactions()
            .log_batch(batch(&settings.customers, settings.round, n))
            .await
            .expect("a batch");
        println!("committed {n}");
        if every > 0 && n % every == every - 1 {
            println!("step");
            after().await;
            println!("step done");
        }
    }
}

/// When a writer is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    /// After a random delay.
    Random,
    /// As soon as it reports a batch committed.
    AfterCommit,
    /// As soon as it reports its step (a fold, say) started.
    DuringStep,
}

/// What the kills did.
#[derive(Debug, Default)]
pub struct KillReport {
    /// Writers killed, by when.
    pub kills: BTreeMap<When, usize>,
    /// Writers whose last word was that the step started: killed inside it.
    pub inside_step: usize,
    /// Batches `(round, n)` a writer reported committed before it was killed.
    pub committed: BTreeSet<(usize, usize)>,
}

/// Runs `kills` writers one after another (this test binary with `writer_test` selected)
/// and kills each with SIGKILL, cycling through `whens`.
pub fn kill_writers(
    writer_test: &str,
    target: &str,
    tenant: TenantId,
    customers: &[CustomerId],
    kills: usize,
    whens: &[When],
) -> KillReport {
    let list = customers
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut report = KillReport::default();
    let mut rng = fastrand::Rng::with_seed(0x6b69_6c6c);
    for round in 0..kills {
        let when = whens[round % whens.len()];
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", writer_test, "--nocapture", "--test-threads=1"])
            .env(TARGET, target)
            .env(TENANT, tenant.to_string())
            .env(CUSTOMERS, &list)
            .env(ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the writer starts");
        let stdout = child.stdout.take().expect("piped");
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
        // Skip a few matching lines, so kills land on varied states.
        let skip = rng.usize(0..4);
        let delay = Duration::from_millis(rng.u64(50..600));
        let (mut matched, mut last) = (0, String::new());
        let note = |line: &str, report: &mut KillReport| {
            if let Some(n) = line.strip_prefix("committed ") {
                report
                    .committed
                    .insert((round, n.parse().expect("a batch number")));
            }
        };
        loop {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "writer {round} did not reach the point to kill it"
            );
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(line) => {
                    note(&line, &mut report);
                    let hit = match when {
                        When::Random => false,
                        When::AfterCommit => line.starts_with("committed "),
                        When::DuringStep => line == "step",
                    };
                    last = line;
                    if hit {
                        matched += 1;
                        if matched > skip {
                            break;
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("writer {round} ended by itself: {:?}", child.wait())
                }
            }
            if when == When::Random && started.elapsed() >= delay {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("the writer is gone");
        reader.join().expect("the reader thread");
        // Lines still in the pipe were printed before the kill.
        for line in rx.try_iter() {
            note(&line, &mut report);
            last = line;
        }
        if last == "step" {
            report.inside_step += 1;
        }
        *report.kills.entry(when).or_default() += 1;
    }
    report
}

/// Checks what the killed writers left: every batch whole, every batch seen committed
/// present, every profile equal to a rebuild. Returns the number of batches stored.
pub async fn verify(
    store: &Arc<dyn Storage>,
    tenant: TenantId,
    customers: &[CustomerId],
    committed: &BTreeSet<(usize, usize)>,
) -> usize {
    let mut batches: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for c in customers {
        let history = crate::conformance::full_timeline(store, tenant, *c, 500).await;
        for i in &history {
            let mut parts = i
                .key
                .external_id()
                .split('-')
                .map(|p| p.parse::<usize>().expect("a writer's key"));
            let (r, n) = (parts.next().expect("round"), parts.next().expect("batch"));
            *batches.entry((r, n)).or_default() += 1;
        }
        crate::conformance::assert_profile_is_rebuild(store, tenant, *c).await;
    }
    for (b, rows) in &batches {
        assert_eq!(*rows, ROWS, "batch {b:?} is stored whole or not at all");
    }
    for b in committed {
        assert!(
            batches.contains_key(b),
            "batch {b:?} was reported committed"
        );
    }
    batches.len()
}
