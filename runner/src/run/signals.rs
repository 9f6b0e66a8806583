//! SIGTERM and SIGINT: the first one cancels the run cooperatively (the
//! current step is asked to stop, `always` steps run within the grace
//! period, the journal is written, traces flushed, exit INTERRUPTED). A
//! second signal is logged; the grace period still bounds the shutdown.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cancel `token` on the first SIGTERM or SIGINT. Must be called inside
/// the runtime.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut count = 0u32;
        loop {
            let name = tokio::select! {
                Some(()) = term.recv() => "SIGTERM",
                Some(()) = int.recv() => "SIGINT",
                else => return,
            };
            count += 1;
            if count == 1 {
                tracing::warn!(
                    "received {name}: stopping the current step, running `always` steps, then exiting"
                );
                token.cancel();
            } else {
                tracing::warn!("received {name} again: already shutting down");
            }
        }
    });
    Ok(())
}
