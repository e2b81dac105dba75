//! Heavy computation off the async executor, whatever the runtime.
//!
//! Duplicate detection over a tenant and model fitting take seconds of CPU; run inline in
//! an `async fn` they would hold an executor thread (and every task queued on it) for that
//! long. [`run`] moves the work to a thread of its own and awaits its result, without
//! tying the core to one async runtime (the result comes back through a oneshot channel
//! that any executor can await).

/// Runs `work` on a new thread and awaits its result. A panic in `work` is resumed in the
/// caller, as if the work had run inline.
///
/// Errors: [`Error::Io`](crate::Error::Io) when the operating system refuses a new thread
/// (nothing ran).
///
/// ```
/// # futures_lite_block_on(async {
/// let sum = crm_core::blocking::run(|| (1..=100u64).sum::<u64>()).await.unwrap();
/// assert_eq!(sum, 5050);
/// # });
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn run<T, F>(work: F) -> crate::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("crm-blocking".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The caller may have stopped waiting; then nobody needs the result.
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return Err(crate::Error::io("a worker thread", e));
    }
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // The sender is dropped without sending only if the thread died outside
        // `catch_unwind`; an error, not a hang or a panic, if it ever does.
        Err(_) => Err(crate::Error::io(
            "a worker thread",
            std::io::Error::other("the worker ended without a result"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_while_the_executor_stays_free() {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        // The worker waits for a value that a task on the executor's only thread sends:
        // run inline, it would wait forever (bounded here by the timeout).
        let worker = super::run(move || rx.recv_timeout(std::time::Duration::from_secs(10)));
        let sender = tokio::spawn(async move { tx.send(7).unwrap() });
        assert_eq!(worker.await.unwrap(), Ok(7));
        sender.await.unwrap();
    }

    #[tokio::test]
    #[should_panic(expected = "boom")]
    async fn a_panic_reaches_the_caller() {
        let _: crate::Result<()> = super::run(|| panic!("boom")).await;
    }
}
