//! A real HTTP server process for the tests: `receiver.py` (Python's standard library
//! only) on a free loopback port, reporting each request it receives as a JSON line.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One request as the receiver saw it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Request {
    pub path: String,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
    /// Whether the receiver's own check (the Python recipe of the crate docs) accepted
    /// the signature and timestamp, with the secret it was started with.
    pub verified: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A running receiver; killed when dropped.
pub struct Receiver {
    child: Child,
    pub port: u16,
    requests: mpsc::Receiver<Request>,
}

impl Receiver {
    /// Plain HTTP; the receiver checks signatures with `secret`.
    pub fn start(secret: &str) -> Receiver {
        Receiver::start_with(secret, &[])
    }

    /// HTTPS with this certificate and key.
    pub fn start_tls(secret: &str, cert: &Path, key: &Path) -> Receiver {
        Receiver::start_with(
            secret,
            &[
                "--tls".into(),
                cert.display().to_string(),
                key.display().to_string(),
            ],
        )
    }

    fn start_with(secret: &str, options: &[String]) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(secret)
            .args(options)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts the webhook receiver");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines
            .next()
            .expect("the receiver says its port")
            .expect("a line");
        let port: serde_json::Value = serde_json::from_str(&first).expect("JSON");
        let port = port["port"].as_u64().expect("a port") as u16;
        let (tx, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let request: Request = serde_json::from_str(&line).expect("a request line");
                if tx.send(request).is_err() {
                    return;
                }
            }
        });
        Receiver {
            child,
            port,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next `n` requests, waiting up to 20 s for them.
    pub fn take(&self, n: usize) -> Vec<Request> {
        (0..n)
            .map(|i| {
                self.requests
                    .recv_timeout(Duration::from_secs(20))
                    .unwrap_or_else(|e| panic!("request {} of {n} did not arrive: {e}", i + 1))
            })
            .collect()
    }

    /// Requests that arrived so far and were not taken.
    pub fn rest(&self) -> Vec<Request> {
        self.requests.try_iter().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
