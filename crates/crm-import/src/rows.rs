//! CSV records read on tokio's blocking pool and handed to the async import a chunk at a
//! time, so a slow or blocking `Read` (a file, a pipe, a network share) never holds an
//! executor thread.

use std::collections::HashMap;
use std::io::Read;

use crm_core::{Error, Result};
use tokio::sync::mpsc;

use crate::{positions, ImportOptions, Rejected};

/// Rows per message from the reading thread.
const CHUNK: usize = 256;
/// Chunks in flight: the reader stays at most this far ahead of the writes.
const IN_FLIGHT: usize = 4;

/// What reading one record gave: a row's line, or a row reported and skipped.
pub(crate) type NextRecord = std::result::Result<u64, Rejected>;

/// One record read, with the input's byte position after it.
pub(crate) struct ReadRow {
    pub(crate) record: csv::StringRecord,
    pub(crate) next: NextRecord,
    pub(crate) byte: u64,
}

enum Message {
    Header(csv::StringRecord),
    Rows(Vec<ReadRow>),
    End(u64),
    Failed(Error),
}

/// The records of an input, read on the blocking pool.
pub(crate) struct Rows {
    rx: mpsc::Receiver<Message>,
    buffered: std::vec::IntoIter<ReadRow>,
    /// Header positions of the mapped columns.
    pub(crate) at: HashMap<String, usize>,
    /// The byte position after the last record handed out.
    pub(crate) byte: u64,
    ended: bool,
}

impl Rows {
    /// Starts reading `input` with the options' delimiter and checks the header against
    /// the mapped `columns` (a validation error before any row is read).
    pub(crate) async fn open<R: Read + Send + 'static>(
        input: R,
        options: &ImportOptions,
        columns: &[(&'static str, &str)],
    ) -> Result<Rows> {
        if options.batch_size == 0 || options.batch_size > 10_000 {
            return Err(Error::validation(
                "batch_size",
                format!("must be 1 to 10000, got {}", options.batch_size),
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::io(
                "import input",
                std::io::Error::other(format!("the import runs inside a tokio runtime: {e}")),
            )
        })?;
        let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
        let delimiter = options.delimiter;
        // Detached: it ends at the end of the input, on an error, or when the import stops
        // listening (a send fails).
        drop(runtime.spawn_blocking(move || read_all(input, delimiter, &tx)));
        let headers = match rx.recv().await {
            Some(Message::Header(h)) => h,
            Some(Message::Failed(e)) => return Err(e),
            _ => {
                return Err(Error::io(
                    "import input",
                    std::io::Error::other("no header"),
                ))
            }
        };
        let at = positions(&headers, columns)?;
        Ok(Rows {
            rx,
            buffered: Vec::new().into_iter(),
            at,
            byte: 0,
            ended: false,
        })
    }

    /// The next record, `None` at the end of the input; an error when the input could not
    /// be read (the import stops there and does not look complete).
    pub(crate) async fn next(&mut self) -> Result<Option<ReadRow>> {
        loop {
            if let Some(row) = self.buffered.next() {
                self.byte = row.byte;
                return Ok(Some(row));
            }
            if self.ended {
                return Ok(None);
            }
            match self.rx.recv().await {
                Some(Message::Rows(rows)) => self.buffered = rows.into_iter(),
                Some(Message::End(byte)) => {
                    self.byte = byte;
                    self.ended = true;
                }
                Some(Message::Failed(e)) => return Err(e),
                // The reading thread never sends a second header; a thread that stopped
                // without saying why (it panicked) is an input failure, not an end.
                Some(Message::Header(_)) | None => {
                    return Err(Error::io(
                        "import input",
                        std::io::Error::other("the reader stopped before the end of the input"),
                    ))
                }
            }
        }
    }
}

/// The reading thread: the header, then chunks of records, then the end (or a failure).
fn read_all<R: Read>(input: R, delimiter: u8, tx: &mpsc::Sender<Message>) {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(input);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            let _ = tx.blocking_send(Message::Failed(header_error(e)));
            return;
        }
    };
    let width = headers.len();
    if tx.blocking_send(Message::Header(headers)).is_err() {
        return;
    }
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        let mut record = csv::StringRecord::new();
        match next_record(&mut reader, &mut record, width) {
            Ok(Some(next)) => {
                chunk.push(ReadRow {
                    record,
                    next,
                    byte: reader.position().byte(),
                });
                if chunk.len() == CHUNK
                    && tx
                        .blocking_send(Message::Rows(std::mem::take(&mut chunk)))
                        .is_err()
                {
                    return;
                }
            }
            Ok(None) => {
                if !chunk.is_empty() && tx.blocking_send(Message::Rows(chunk)).is_err() {
                    return;
                }
                let _ = tx.blocking_send(Message::End(reader.position().byte()));
                return;
            }
            Err(e) => {
                // What was read before the failure is handed out first.
                if !chunk.is_empty() && tx.blocking_send(Message::Rows(chunk)).is_err() {
                    return;
                }
                let _ = tx.blocking_send(Message::Failed(e));
                return;
            }
        }
    }
}

/// A header that cannot be read: unreadable input is I/O, malformed CSV is validation.
fn header_error(e: csv::Error) -> Error {
    if e.is_io_error() {
        io_error(e)
    } else {
        Error::validation("header", e.to_string())
    }
}

fn io_error(e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    let source = match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    };
    Error::io(
        "import input",
        std::io::Error::new(
            source.kind(),
            format!("reading the input failed at line {line}: {source}"),
        ),
    )
}

/// Reads the next record: `None` at the end of the input; `Some(Err)` for a row that is
/// not well-formed CSV or whose number of fields differs from the header's (reported, then
/// skipped); an error when the input itself cannot be read.
fn next_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::StringRecord,
    width: usize,
) -> Result<Option<NextRecord>> {
    match reader.read_record(record) {
        Ok(false) => Ok(None),
        Ok(true) => {
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != width {
                return Ok(Some(Err(Rejected {
                    line,
                    column: "(row)".to_string(),
                    reason: format!("has {} fields where the header has {width}", record.len()),
                })));
            }
            Ok(Some(Ok(line)))
        }
        Err(e) if e.is_io_error() => Err(io_error(e)),
        Err(e) => Ok(Some(Err(Rejected {
            line: e.position().map_or(0, |p| p.line()),
            column: "(row)".to_string(),
            reason: e.to_string(),
        }))),
    }
}
