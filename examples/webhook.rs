//! Domain events to a webhook: a local receiver checks each request's signature and
//! timestamp, as an ERP's endpoint would, and prints what it verified.
//!
//! Run with `cargo run --example webhook`. The receiver listens on a loopback port over
//! plain HTTP (a real endpoint is HTTPS: `WebhookConfig::new` refuses anything else).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc};

use crm_core::notify::{Dispatcher, LogNotifier, StaticDirectory};
use crm_core::{Crm, Customer, Lifecycle, SystemClock, TenantId, UserId};
use crm_sqlite::SqliteStore;
use crm_webhook::{
    Verifier, WebhookConfig, WebhookSecret, WebhookSink, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};

/// The largest body the receiver reads.
const MAX_BODY: usize = 1 << 20;

/// What the receiver made of one request.
struct Seen {
    verdict: String,
    timestamp: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
}

/// Header names (lowercase) and values.
type Headers = Vec<(String, String)>;

/// Reads one request: its headers and its body.
fn read_request(stream: &TcpStream) -> std::io::Result<(Headers, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((headers, body))
}

/// Answers each request on `listener`: 200 if it verifies, 401 if not.
fn receive(listener: TcpListener, verifier: Verifier, seen: mpsc::Sender<Seen>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let Ok((headers, body)) = read_request(&stream) else {
            continue;
        };
        let header = |name: &str| {
            let name = name.to_ascii_lowercase();
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        let (timestamp, signature) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));
        let checked = verifier.verify_event(
            timestamp.as_deref(),
            signature.as_deref(),
            &body,
            chrono::Utc::now(),
        );
        let (status, verdict) = match checked {
            Ok(event) => (
                "200 OK",
                format!(
                    "verified #{:<2} {:<24} {} {} v{}",
                    event.seq,
                    event.kind.as_str(),
                    event.entity.kind,
                    event.entity.id,
                    event.version
                ),
            ),
            Err(why) => ("401 Unauthorized", format!("refused: {why}")),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let seen_now = Seen {
            verdict,
            timestamp,
            signature,
            body,
        };
        if seen.send(seen_now).is_err() {
            return;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        println!("usage: cargo run --example webhook\n\nSends a few domain events to a signed webhook on a local receiver and prints what the receiver verified.");
        return Ok(());
    }
    // Shared by the CRM and the receiver; in production, a random value from a vault.
    let secret = WebhookSecret::new(*b"example secret: use 32 random bytes")?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/crm/events", listener.local_addr()?);
    let (tx, seen) = mpsc::channel();
    let verifier = Verifier::new(secret.clone());
    let check = verifier.clone();
    std::thread::spawn(move || receive(listener, verifier, tx));
    println!("receiver listening on {url}");

    let store = Arc::new(SqliteStore::open_in_memory()?);
    let crm = Crm::new(store.clone()).with_events(true);
    let tenant = TenantId::new();
    let customers = crm.tenant(tenant).customers();
    let acme = customers
        .register(
            Customer::organization("Acme Tools Ltd")
                .lifecycle(Lifecycle::Active)
                .build()?,
        )
        .await?;
    customers
        .change_owner(
            acme.id,
            Some(UserId::new()),
            acme.version,
            None,
            Some("key account"),
        )
        .await?;
    customers
        .register(Customer::person("Lena Vogel").build()?)
        .await?;

    let sink = WebhookSink::new(WebhookConfig::plain_http_dangerous(&url, secret)?)?;
    let dispatcher = Dispatcher::new(
        tenant,
        store,
        Arc::new(LogNotifier::stderr()),
        Arc::new(StaticDirectory::new()),
        Arc::new(SystemClock),
    )
    .with_event_sink(Arc::new(sink));
    // One entity's events go out one at a time, in order: a few rounds.
    let mut sent = 0;
    loop {
        let round = dispatcher.run_once(chrono::Utc::now()).await?;
        if round.claimed == 0 {
            break;
        }
        sent += round.sent;
    }
    println!("dispatched {sent} events");

    let received: Vec<Seen> = seen.try_iter().collect();
    for s in &received {
        println!("  {}", s.verdict);
    }

    // What the receiver does with a captured request sent again later, or altered.
    if let Some(first) = received.first() {
        let later = chrono::Utc::now() + chrono::Duration::minutes(10);
        let replay = check.verify(
            first.timestamp.as_deref(),
            first.signature.as_deref(),
            &first.body,
            later,
        );
        println!(
            "the first request replayed 10 minutes later: {}",
            replay.err().map_or("accepted".into(), |e| e.to_string())
        );
        let mut altered = first.body.clone();
        altered.extend_from_slice(b" ");
        let tampered = check.verify(
            first.timestamp.as_deref(),
            first.signature.as_deref(),
            &altered,
            chrono::Utc::now(),
        );
        println!(
            "the first request with one byte added: {}",
            tampered.err().map_or("accepted".into(), |e| e.to_string())
        );
    }
    Ok(())
}
