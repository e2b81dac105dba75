//! `crm`: the CRM core from a shell.
//!
//! Try the library on generated data (`crm demo`) or your own, print its reports as tables
//! for a person or CSV and JSON for machines, draw them as SVG charts, and do an operator's
//! chores (dead letters, erasure requests) without writing Rust. Works on a SQLite file
//! (`--database crm.db`, the default) or PostgreSQL (`--database postgres://...`).
//!
//! ## Why these dependencies
//!
//! - `clap` (derive): subcommands, `--help` on each, typed values and their errors;
//!   `clap_complete` writes shell completions from the same definitions.
//! - `plotters` (SVG backend only, no font or bitmap code): the charts, as SVG files any
//!   browser shows.
//! - `fastrand`: the demo's seeded generator, already in the tree.
//! - `crm` with `sqlite`, `analytics` (and `postgres` by default): the library itself.

mod chart;
mod db;
mod demo;
mod import;
mod ops;
mod output;
mod records;
mod report;
mod segments;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use crm::TenantId;

use db::{Failure, Open};
use output::Format;

/// The CRM core from a shell: reports, charts and an operator's chores on a SQLite file or
/// PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "crm", version, propagate_version = true)]
struct Cli {
    /// The store: a SQLite file path, or a postgres:// URL.
    #[arg(long, global = true, env = "CRM_DATABASE", default_value = "crm.db")]
    database: String,
    /// The tenant to work on (a UUID); the default is the one `crm demo` fills.
    #[arg(long, global = true, env = "CRM_TENANT", default_value_t = db::DEFAULT_TENANT)]
    tenant: TenantId,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates the database (a SQLite file, or the schema on PostgreSQL) at the current
    /// schema version.
    Init,
    /// Shows the schema migrations, applied and pending, and applies the pending ones.
    Migrate {
        /// Only show them; change nothing.
        #[arg(long)]
        status: bool,
    },
    /// Fills the tenant with a small generated company: customers, a year of interactions,
    /// service cases handled by a team of four, and two KPI rules.
    Demo {
        /// How many customers.
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=100_000))]
        customers: u32,
        /// The generator's seed: the same seed gives the same company.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Imports a CSV file of customers or interactions, as a mapping file says (see
    /// `crm import --help`). Rows that fail their checks are written to a file of their
    /// own; the rest are stored, in batches.
    #[command(after_long_help = import::MAPPING_HELP)]
    Import {
        /// What the file holds.
        #[arg(value_enum)]
        what: import::What,
        /// The CSV file (a header line, then one record per line).
        file: std::path::PathBuf,
        /// The mapping file: which column holds what (TOML).
        #[arg(long, value_name = "MAPPING.toml")]
        mapping: std::path::PathBuf,
        /// Where rejected rows go, as CSV (default: FILE's name with .rejected.csv, in
        /// the current folder).
        #[arg(long, value_name = "FILE.csv")]
        rejected: Option<std::path::PathBuf>,
        /// Import into a copy of the database and throw it away: see what would happen.
        #[arg(long)]
        dry_run: bool,
        /// The field delimiter, one ASCII character.
        #[arg(long, default_value = ",", value_parser = delimiter)]
        delimiter: u8,
        /// Output format of the summary.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Customer records.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// A customer's interactions, newest first.
    Timeline {
        /// The customer's id.
        id: String,
        /// Most interactions to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Moves every customer one user owns to another user (for example when someone
    /// leaves), recorded in each customer's ownership history.
    Transfer {
        /// The user whose customers move (an id, or a demo staff member's name).
        #[arg(long)]
        from: String,
        /// The user who takes them over.
        #[arg(long)]
        to: String,
        /// Why, for the ownership history.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Customer segments: a rule selects the members (for example
    /// `lifecycle = "active" and revenue >= 1000 and "newsletter" in tags`).
    Segment {
        #[command(subcommand)]
        command: SegmentCommand,
        /// The currency of `revenue` and money attributes in rules.
        #[arg(long, global = true, default_value = "EUR")]
        currency: String,
        /// A custom attribute rules may use, as key=type (text, number, bool, date, money,
        /// text_list); repeat for more.
        #[arg(long = "attribute", global = true, value_name = "KEY=TYPE")]
        attributes: Vec<String>,
    },
    /// Reports on the tenant's customers and staff.
    Report {
        /// Which report.
        #[arg(value_enum)]
        report: report::Kind,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Also draw the report as an SVG chart into this file.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<std::path::PathBuf>,
        /// Only purchases in this currency count (rfm, abc, clv).
        #[arg(long, default_value = "EUR")]
        currency: String,
        /// The day the report is for (YYYY-MM-DD; default today, UTC). For clv, the end of
        /// the calibration period: purchases after it are the holdout the fit is checked
        /// against.
        #[arg(long)]
        as_of: Option<String>,
        /// The pipeline of pipeline and funnel, by name (default: the first).
        #[arg(long)]
        pipeline: Option<String>,
    },
    /// KPI rules.
    #[command(subcommand)]
    Kpi(KpiCommand),
    /// The scheduled jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Delivers the outbox by email through an SMTP server, until Ctrl-C (which finishes
    /// the message in hand). Staff are the demo's team, at FIRST.LAST@staff.example;
    /// a login comes from CRM_SMTP_USER and CRM_SMTP_PASSWORD.
    Dispatch {
        /// The server, as HOST:PORT (or HOST for the TLS mode's usual port).
        #[arg(long)]
        smtp: String,
        /// Encryption.
        #[arg(long, value_enum, default_value_t = ops::Tls::Starttls)]
        tls: ops::Tls,
        /// The sender's address.
        #[arg(long, default_value = "crm@example.com")]
        from: String,
        /// Deliver what is due now, then stop.
        #[arg(long)]
        once: bool,
    },
    /// The notification outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Personal data: a customer's export, erasure.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Writes a completion script for a shell to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum CustomersCommand {
    /// Lists customers, oldest first.
    List {
        /// Only those carrying this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only those owned by this user (an id, or a demo staff member's name).
        #[arg(long)]
        owner: Option<String>,
        /// Only those in this lifecycle stage (lead, prospect, active, dormant, churned).
        #[arg(long)]
        lifecycle: Option<String>,
        /// Most customers to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// One customer's record and profile.
    Show {
        /// The customer's id.
        id: String,
        /// Output format (json prints the record and profile as stored).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Finds customers by the start of their name, or by email address (text with an @).
    Search {
        /// A name prefix or an email address.
        text: String,
        /// Most customers to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum SegmentCommand {
    /// The tenant's segments and their rules.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// How many customers a rule selects now, and the first of them; stores nothing.
    Preview {
        /// The rule.
        rule: String,
        /// Most customers to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Stores a segment selecting by a rule, and fills it.
    Create {
        /// Its name, unique in the tenant.
        name: String,
        /// The rule.
        rule: String,
    },
    /// Evaluates a segment's rule again: who entered, who left.
    Refresh {
        /// The segment's name or id.
        segment: String,
    },
    /// A segment's members.
    Members {
        /// The segment's name or id.
        segment: String,
        /// Most customers to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum KpiCommand {
    /// Evaluates the tenant's KPI rules now: warnings and breaches go to the outbox, each
    /// raised once however often this runs.
    Run {
        /// Read every case, customer and deal instead of only those due (slower; for
        /// checking the schedule).
        #[arg(long)]
        scan: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// Runs the due jobs (KPI evaluation, task reminders) for the tenant, each under a
    /// lease, so several runners never run one job at once.
    Run {
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// How many messages wait to be sent.
    Pending,
    /// Messages that failed for good (dead letters), with their last error.
    Dead {
        /// Most messages to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Puts a dead letter back in the queue, to be tried again.
    Requeue {
        /// The message's id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PrivacyCommand {
    /// Writes everything held about a customer as one JSON document to stdout.
    Export {
        /// The customer's id.
        id: String,
    },
    /// Erases a customer's personal data for good (asks first, unless --yes).
    Erase {
        /// The customer's id.
        id: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// A field delimiter: one ASCII character.
fn delimiter(text: &str) -> Result<u8, String> {
    match text.as_bytes() {
        [b] if b.is_ascii() && *b != b'"' && *b != b'\n' => Ok(*b),
        _ => Err(format!("{text:?} is not one ASCII character")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crm: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.closed_pipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crm: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let database = cli.database.as_str();
    match cli.command {
        Command::Init => {
            let db = db::open(database, cli.tenant, Open::Create).await?;
            writeln!(
                out,
                "created {database} (tenant {}); next: `crm demo` fills it with a generated company",
                db.tenant
            )?;
        }
        Command::Migrate { status } => {
            let states = db::migrate(database, status).await?;
            let mut table = output::Table::new(&["version", "name", "state"]);
            for s in &states {
                let state = match (s.applied, status) {
                    (true, _) => "applied",
                    (false, true) => "pending",
                    (false, false) => "applied now",
                };
                table.push(vec![s.version.into(), s.name.clone().into(), state.into()]);
            }
            table.write(Format::Table, &mut out)?;
        }
        Command::Demo { customers, seed } => {
            let db = db::open(database, cli.tenant, Open::Create).await?;
            let summary = demo::fill(&db, customers, seed).await?;
            writeln!(out, "{summary}")?;
        }
        Command::Import {
            what,
            file,
            mapping,
            rejected,
            dry_run,
            delimiter,
            format,
        } => {
            let request = import::Request {
                database,
                tenant: cli.tenant,
                what,
                file: &file,
                mapping: &mapping,
                rejected,
                dry_run,
                delimiter,
            };
            import::run(request, format, &mut out).await?;
        }
        Command::Customers(c) => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            match c {
                CustomersCommand::List {
                    tag,
                    owner,
                    lifecycle,
                    limit,
                    format,
                } => {
                    let query = records::list_query(tag, owner, lifecycle)?;
                    records::list(&db, &query, limit, format, &mut out).await?;
                }
                CustomersCommand::Show { id, format } => {
                    records::show(&db, &id, format, &mut out).await?;
                }
                CustomersCommand::Search {
                    text,
                    limit,
                    format,
                } => {
                    let query = records::search_query(&text)?;
                    records::list(&db, &query, limit, format, &mut out).await?;
                }
            }
        }
        Command::Timeline { id, limit, format } => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            records::timeline(&db, &id, limit, format, &mut out).await?;
        }
        Command::Transfer { from, to, reason } => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            let from = db::parse_user(&from, "from")?;
            let to = db::parse_user(&to, "to")?;
            let moved = db
                .t()
                .customers()
                .transfer_all(from, Some(to), None, reason.as_deref())
                .await?;
            writeln!(
                out,
                "moved {moved} customer(s) from {} to {}",
                db::user_label(from),
                db::user_label(to)
            )?;
        }
        Command::Segment {
            command,
            currency,
            attributes,
        } => {
            let schema = segments::schema(&currency, &attributes)?;
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            match command {
                SegmentCommand::List { format } => segments::list(&db, format, &mut out).await?,
                SegmentCommand::Preview {
                    rule,
                    limit,
                    format,
                } => segments::preview(&db, &rule, &schema, limit, format, &mut out).await?,
                SegmentCommand::Create { name, rule } => {
                    segments::create(&db, &name, &rule, &schema, &mut out).await?
                }
                SegmentCommand::Refresh { segment } => {
                    segments::refresh(&db, &segment, &schema, &mut out).await?
                }
                SegmentCommand::Members {
                    segment,
                    limit,
                    format,
                } => segments::members(&db, &segment, limit, format, &mut out).await?,
            }
        }
        Command::Report {
            report,
            format,
            chart,
            currency,
            as_of,
            pipeline,
        } => {
            let options = report::Options::parse(&currency, as_of.as_deref(), pipeline)?;
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            report::run(&db, report, &options, format, chart.as_deref(), &mut out).await?;
        }
        Command::Kpi(KpiCommand::Run { scan, format }) => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            ops::kpi_run(&db, scan, format, &mut out).await?;
        }
        Command::Jobs(JobsCommand::Run { format }) => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            ops::jobs_run(&db, format, &mut out).await?;
        }
        Command::Dispatch {
            smtp,
            tls,
            from,
            once,
        } => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            let request = ops::DispatchRequest {
                smtp,
                tls,
                from,
                once,
            };
            ops::dispatch(&db, &request, &mut out).await?;
        }
        Command::Outbox(c) => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            match c {
                OutboxCommand::Pending => records::pending(&db, &mut out).await?,
                OutboxCommand::Dead { limit, format } => {
                    records::dead(&db, limit, format, &mut out).await?
                }
                OutboxCommand::Requeue { id } => records::requeue(&db, &id, &mut out).await?,
            }
        }
        Command::Privacy(c) => {
            let db = db::open(database, cli.tenant, Open::Existing).await?;
            match c {
                PrivacyCommand::Export { id } => records::export(&db, &id, &mut out).await?,
                PrivacyCommand::Erase { id, yes } => {
                    records::erase(&db, &id, yes, &mut out).await?
                }
            }
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "crm", &mut out);
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
