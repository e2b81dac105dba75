//! A real SMTP server process for the tests: Debian's `python3-aiosmtpd` running
//! `smtp_sink.py` on a free loopback port, writing each message it accepts as JSON.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the server received, parsed by Python's email package.
#[derive(Debug, serde::Deserialize)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub to_name: Option<String>,
    pub message_id: String,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub header_names: Vec<String>,
    pub raw: String,
    pub tls: bool,
    pub authenticated: bool,
}

/// A running sink; stopped (killed) when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py")
}

/// The interpreter that has aiosmtpd: `CRM_TEST_SMTP_PYTHON`, else Debian's
/// `/usr/bin/python3` (where `python3-aiosmtpd` installs), else `python3` on PATH.
fn python() -> Result<String, String> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("CRM_TEST_SMTP_PYTHON") {
        candidates.push(p);
    }
    candidates.extend(["/usr/bin/python3".to_string(), "python3".to_string()]);
    for candidate in &candidates {
        let ok = Command::new(candidate)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(candidate.clone());
        }
    }
    Err(format!(
        "no Python with aiosmtpd among {candidates:?} (install python3-aiosmtpd)"
    ))
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl SmtpSink {
    /// Starts a sink on a free port, or says why the SMTP tests are skipped (a failure
    /// when `CRM_REQUIRE_SMTP=1`).
    pub fn start_or_skip(dir: &Path) -> Option<SmtpSink> {
        match SmtpSink::start_on(free_port(), dir) {
            Ok(sink) => Some(sink),
            Err(why) => {
                skip_or_fail(&why);
                None
            }
        }
    }

    /// Starts a sink on `port`, writing messages into `dir`.
    pub fn start_on(port: u16, dir: &Path) -> Result<SmtpSink, String> {
        SmtpSink::start_with(port, dir, &[])
    }

    /// Starts a sink with extra options (`--starttls CERT KEY`, `--tls CERT KEY`,
    /// `--auth USER:PASSWORD`).
    pub fn start_with(port: u16, dir: &Path, options: &[String]) -> Result<SmtpSink, String> {
        let python = python()?;
        let mut child = Command::new(&python)
            .arg(script())
            .arg(port.to_string())
            .arg(dir)
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{python}: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the SMTP sink did not start (said {line:?})"));
        }
        Ok(SmtpSink {
            child,
            port,
            dir: dir.to_path_buf(),
        })
    }

    /// Makes the server answer DATA with `mode`: "ok", "451" or "550".
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.dir.join("mode"), mode).expect("write mode");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Says why the SMTP tests are skipped, or fails when `CRM_REQUIRE_SMTP=1`.
pub fn skip_or_fail(why: &str) {
    if std::env::var("CRM_REQUIRE_SMTP").as_deref() == Ok("1") {
        panic!("CRM_REQUIRE_SMTP=1 but the SMTP server could not start: {why}");
    }
    eprintln!("skipped: SMTP tests need a local SMTP server: {why}");
}

/// Every message received in `dir` so far, in arrival order.
pub fn received(dir: &Path) -> Vec<Received> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("sink dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("message file");
            serde_json::from_str(&text).expect("message json")
        })
        .collect()
}

/// Waits until `dir` holds at least `n` messages (at most 20 s).
pub fn wait_for(dir: &Path, n: usize) -> Vec<Received> {
    let start = Instant::now();
    loop {
        let got = received(dir);
        if got.len() >= n || start.elapsed() > Duration::from_secs(20) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub use crm_testkit::tls::TestCa;

/// The sink options that serve `ca`'s server certificate (`--starttls` or `--tls`).
pub fn sink_options(ca: &TestCa, flag: &str) -> Vec<String> {
    vec![
        flag.to_string(),
        ca.cert.display().to_string(),
        ca.key.display().to_string(),
    ]
}
