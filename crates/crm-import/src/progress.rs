//! A progress display for command-line tools: [`on_stderr`].

use std::io::{IsTerminal, Write};

use crate::Progress;

/// A progress callback for [`import_customers`](crate::import_customers) and
/// [`import_interactions`](crate::import_interactions) that writes to standard error, from
/// the bytes read out of `total`: on a terminal, a bar redrawn in place; otherwise (a file,
/// a pipe) one plain line at each quarter and one when done, so logs stay readable. Calls
/// after the last (`done`) one are ignored.
pub fn on_stderr(label: &'static str, total: u64) -> impl FnMut(&Progress) {
    let terminal = std::io::stderr().is_terminal();
    let mut quarters_shown = 0;
    let mut finished = false;
    move |p: &Progress| {
        if finished {
            return;
        }
        finished = p.done;
        let share = if total == 0 {
            1.0
        } else {
            (p.bytes as f64 / total as f64).min(1.0)
        };
        let counts = format!("{} rows, {} rejected", p.rows, p.rejected);
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not stop an import.
        let _ = if terminal {
            let filled = ((share * 30.0).round() as usize).min(30);
            let end = if p.done { "\n" } else { "" };
            write!(
                err,
                "\r{label:<13} [{}{}] {:>3.0}%  {counts}{end}",
                "#".repeat(filled),
                ".".repeat(30 - filled),
                share * 100.0,
            )
            .and_then(|()| err.flush())
        } else if p.done {
            writeln!(err, "{label:<13} done: {counts}")
        } else {
            // Quarters 1 to 3 as they are passed; 100% only as "done".
            let quarter = ((share * 4.0).floor() as usize).min(3);
            if quarter > quarters_shown {
                quarters_shown = quarter;
                writeln!(err, "{label:<13} {:>3}%  {counts}", quarter * 25)
            } else {
                Ok(())
            }
        };
    }
}
