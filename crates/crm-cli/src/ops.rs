//! The operator's runs: KPI evaluation, the job runner, and outbox delivery over SMTP.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crm::email::{SmtpConfig, SmtpNotifier, TemplateParts, Templates};
use crm::notify::{
    Directory, DispatchReport, Dispatcher, Notifier, Shutdown, StaffMember, StaticDirectory,
};
use crm::service::{KpiJob, ReminderJob};
use crm::{EmailAddress, TeamId, TenantId};
use serde_json::Value;

use crate::db::{Db, Failure, DEMO_STAFF};
use crate::output::{Format, Table};

/// `crm kpi run`: evaluates the tenant's KPI rules now; alerts go to the outbox.
pub async fn kpi_run(
    db: &Db,
    scan: bool,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let kpis = db.t().kpis();
    let engine = kpis.engine().await?;
    if engine.rules().next().is_none() {
        return Err(Failure::new(
            "the tenant has no KPI rules (`crm demo` adds two)",
        ));
    }
    let now = db.crm.now();
    let report = if scan {
        kpis.evaluate_scan(&engine, now).await?
    } else {
        kpis.evaluate(&engine, now).await?
    };
    let mut table = Table::new(&["what", "count"]);
    let counts = serde_json::to_value(report).map_err(|e| Failure::new(e.to_string()))?;
    if let Value::Object(counts) = counts {
        for (what, n) in counts {
            table.push(vec![what.into(), n]);
        }
    }
    table.write(format, out)?;
    Ok(())
}

/// `crm jobs run`: the scheduled jobs (KPI evaluation, task reminders) for the tenant,
/// each under its lease.
pub async fn jobs_run(db: &Db, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    let jobs = db.crm.jobs().with_job(KpiJob)?.with_job(ReminderJob)?;
    let report = jobs.run_due_for(&[db.tenant], db.crm.now()).await?;
    let mut table = Table::new(&["job", "elapsed_ms", "counts", "error"]);
    for run in &report.runs {
        let counts: Vec<String> = run
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        table.push(vec![
            run.job.clone().into(),
            (run.elapsed.as_millis() as u64).into(),
            counts.join(" ").into(),
            run.error.clone().into(),
        ]);
    }
    table.write(format, out)?;
    if report.skipped > 0 {
        eprintln!(
            "{} job(s) skipped: another runner holds their lease",
            report.skipped
        );
    }
    Ok(())
}

/// How `crm dispatch` reaches the SMTP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tls {
    /// STARTTLS on port 587 (or the port given).
    Starttls,
    /// TLS from the first byte, port 465 (or the port given).
    Implicit,
    /// No encryption: only for a server on this machine or in tests.
    None,
}

/// What `crm dispatch` takes.
pub struct DispatchRequest {
    /// `HOST:PORT`, or `HOST` for the TLS mode's default port.
    pub smtp: String,
    /// The encryption.
    pub tls: Tls,
    /// The sender's address.
    pub from: String,
    /// Deliver what is due now, then stop (instead of running until interrupted).
    pub once: bool,
}

/// The staff directory `crm dispatch` resolves users with: the demo's team (Maria Lopez
/// leads it), at `<first>.<last>@staff.example`.
fn directory(tenant: TenantId) -> Result<Arc<dyn Directory>, Failure> {
    let directory = StaticDirectory::new();
    let team = TeamId::from_uuid(uuid::Uuid::from_u128(
        0x0000_0000_0000_4000_8000_0000_0000_0201,
    ));
    for (id, name) in DEMO_STAFF {
        let email = format!("{}@staff.example", name.to_lowercase().replace(' ', "."));
        directory.insert(
            tenant,
            StaffMember {
                id,
                name: name.to_string(),
                email: EmailAddress::parse(&email)?,
                locale: None,
                team: Some(team),
                team_lead: Some(DEMO_STAFF[0].0),
            },
        );
    }
    Ok(Arc::new(directory))
}

/// The messages the core's jobs send, in English.
fn templates() -> Result<Templates, Failure> {
    let mut t = Templates::new();
    for (name, subject, text) in [
        (
            "kpi.warning",
            "Due soon: {{ rule }}",
            "Case \"{{ subject }}\" is close to its target ({{ rule }}): {{ elapsed_minutes }} of {{ target_minutes }} minutes used.",
        ),
        (
            "kpi.breach",
            "Breached: {{ rule }}",
            "Case \"{{ subject }}\" missed its target ({{ rule }}): {{ elapsed_minutes }} minutes against {{ target_minutes }}.",
        ),
        ("task.due", "Task due: {{ title }}", "Your task \"{{ title }}\" is due."),
        (
            "pool.notice",
            "A customer returns to the pool soon",
            "A customer of yours has had no contact for a while and returns to the pool unless you reach them.",
        ),
        (
            "pool.reclaimed",
            "A customer returned to the pool",
            "A customer of yours returned to the pool after no contact.",
        ),
    ] {
        t.add(None, name, None, TemplateParts::new(subject, text))?;
    }
    Ok(t)
}

/// The notifier for `--smtp`.
fn notifier(request: &DispatchRequest) -> Result<Arc<dyn Notifier>, Failure> {
    let (host, port) = match request.smtp.rsplit_once(':') {
        Some((host, port)) => {
            let port: u16 = port
                .parse()
                .map_err(|_| Failure::new(format!("--smtp: {port:?} is not a port")))?;
            (host, Some(port))
        }
        None => (request.smtp.as_str(), None),
    };
    let name = "CRM";
    let mut config = match (request.tls, port) {
        (Tls::None, Some(port)) => SmtpConfig::plain_dangerous(host, port, name, &request.from)?,
        (Tls::None, None) => {
            return Err(Failure::new("--smtp: --tls none needs HOST:PORT"));
        }
        (Tls::Starttls, _) => SmtpConfig::starttls(host, name, &request.from)?,
        (Tls::Implicit, _) => SmtpConfig::implicit_tls(host, name, &request.from)?,
    };
    if let (Some(port), false) = (port, request.tls == Tls::None) {
        config = config.with_port(port);
    }
    if let (Ok(user), Ok(password)) = (
        std::env::var("CRM_SMTP_USER"),
        std::env::var("CRM_SMTP_PASSWORD"),
    ) {
        config = config.with_credentials(&user, &password);
    }
    Ok(Arc::new(SmtpNotifier::new(config, templates()?)?))
}

/// `crm dispatch`: delivers the outbox until interrupted (Ctrl-C finishes the message in
/// hand and gives the rest of the batch back), or with `--once` until nothing is due.
pub async fn dispatch(
    db: &Db,
    request: &DispatchRequest,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let dispatcher = Dispatcher::new(
        db.tenant,
        db.crm.storage().clone(),
        notifier(request)?,
        directory(db.tenant)?,
        Arc::new(crm::SystemClock),
    );
    let report = if request.once {
        let mut total = DispatchReport::default();
        loop {
            let round = dispatcher.run_once(db.crm.now()).await?;
            total += round;
            if round.claimed == 0 {
                break total;
            }
        }
    } else {
        let shutdown = Shutdown::new();
        let signal = shutdown.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopping: finishing the message in hand");
                signal.trigger();
            }
        });
        eprintln!("delivering through {} until Ctrl-C", request.smtp);
        dispatcher
            .run(&shutdown, |wait| {
                tokio::time::sleep(wait.min(Duration::from_secs(1)))
            })
            .await
    };
    writeln!(
        out,
        "sent {}, retried {}, dead {}, given back {}",
        report.sent, report.retried, report.dead, report.released
    )?;
    Ok(())
}
