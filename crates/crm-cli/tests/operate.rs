//! The operator's runs as processes: KPI evaluation, the job runner, delivery through a
//! real SMTP server process (aiosmtpd), and Ctrl-C.

mod support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{rows, Shell};

/// An SMTP server process printing every message it receives (aiosmtpd's debugging
/// handler), or `None` when aiosmtpd is missing (a failure with `CRM_REQUIRE_SMTP=1`).
struct Smtp {
    child: Child,
    port: u16,
}

impl Smtp {
    fn start() -> Option<Smtp> {
        let python = "/usr/bin/python3";
        let present = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            assert!(
                std::env::var("CRM_REQUIRE_SMTP").map_or(true, |v| v != "1"),
                "CRM_REQUIRE_SMTP=1 but {python} has no aiosmtpd"
            );
            eprintln!("skipped: {python} has no aiosmtpd (Debian's python3-aiosmtpd)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd listens"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Smtp { child, port })
    }

    /// Stops the server; what it printed.
    fn stop(mut self) -> String {
        self.child.kill().unwrap();
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let _ = self.child.wait();
        out
    }
}

fn pending(shell: &Shell) -> u64 {
    let said = shell.ok(&["outbox", "pending"]);
    said.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn kpi_run_raises_each_alert_once_and_jobs_run_finds_nothing_new() {
    let shell = Shell::demo();
    assert_eq!(pending(&shell), 0);
    let first = shell.json(&["kpi", "run", "--format", "json"]);
    let count = |report: &serde_json::Value, what: &str| {
        rows(report)
            .iter()
            .find(|r| r["what"] == what)
            .and_then(|r| r["count"].as_u64())
            .unwrap()
    };
    let alerts = count(&first, "warnings") + count(&first, "breaches");
    assert!(alerts > 0, "{first}");
    let queued = pending(&shell);
    assert!(queued >= alerts, "{queued} messages for {alerts} alerts");
    let again = shell.json(&["kpi", "run", "--scan", "--format", "json"]);
    assert_eq!(
        count(&again, "warnings") + count(&again, "breaches"),
        0,
        "{again}"
    );
    assert_eq!(pending(&shell), queued);
    let jobs = shell.json(&["jobs", "run", "--format", "json"]);
    let names: Vec<&str> = rows(&jobs)
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kpis", "reminders"]);
    assert!(rows(&jobs).iter().all(|r| r["error"].is_null()), "{jobs}");
    assert!(
        !rows(&jobs)[0]["counts"]
            .as_str()
            .unwrap()
            .contains("breaches"),
        "{jobs}"
    );
    assert_eq!(pending(&shell), queued);
}

#[test]
fn dispatch_once_delivers_the_outbox_by_smtp() {
    let Some(smtp) = Smtp::start() else { return };
    let shell = Shell::demo();
    shell.ok(&["kpi", "run"]);
    let queued = pending(&shell);
    assert!(queued > 0);
    let address = format!("127.0.0.1:{}", smtp.port);
    let said = shell.ok(&["dispatch", "--smtp", &address, "--tls", "none", "--once"]);
    assert_eq!(
        said.trim(),
        format!("sent {queued}, retried 0, dead 0, given back 0")
    );
    assert_eq!(pending(&shell), 0);
    let received = smtp.stop();
    assert_eq!(received.matches("MESSAGE FOLLOWS").count() as u64, queued);
    assert!(received.contains("@staff.example"), "{received}");
    assert!(received.contains("Subject: Breached: "), "{received}");
}

#[test]
fn dispatch_without_a_server_retries_later_and_keeps_the_messages() {
    let shell = Shell::demo();
    shell.ok(&["kpi", "run"]);
    let queued = pending(&shell);
    // Nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let said = shell.ok(&[
        "dispatch",
        "--smtp",
        &format!("127.0.0.1:{port}"),
        "--tls",
        "none",
        "--once",
    ]);
    assert!(
        said.starts_with(&format!("sent 0, retried {queued}")),
        "{said}"
    );
    assert_eq!(pending(&shell), queued);
    let err = shell.fails(&["dispatch", "--smtp", "127.0.0.1:notaport", "--tls", "none"]);
    assert!(err.contains("--smtp"), "{err}");
}

#[test]
fn ctrl_c_stops_a_running_dispatcher_cleanly() {
    let Some(smtp) = Smtp::start() else { return };
    let shell = Shell::demo();
    let address = format!("127.0.0.1:{}", smtp.port);
    let child = Command::new(env!("CARGO_BIN_EXE_crm"))
        .arg("--database")
        .arg(shell.db())
        .args(["dispatch", "--smtp", &address, "--tls", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once it runs, queue work for it, then interrupt it.
    std::thread::sleep(Duration::from_millis(500));
    shell.ok(&["kpi", "run"]);
    let started = Instant::now();
    while pending(&shell) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the dispatcher delivers"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(
        said.starts_with("sent ") && !said.starts_with("sent 0,"),
        "{said}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopping"));
    smtp.stop();
}
