//! Identical calls in several processes of one machine: the first to miss takes the call's
//! lease in the store (`store::lease`) and computes; the others wait for its result, polling
//! (sync) or awaiting a ticker (`async fn`), for at most [`LEASE_WAIT`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use event_listener::Event;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Memo;
use crate::codec::Codec;
use crate::store::Claim;

/// How long a call waits for another process that computes the same call (holds its lease)
/// before it computes too.
pub(crate) const LEASE_WAIT: Duration = Duration::from_secs(120);

/// The longest pause between two looks at another process's lease.
const LEASE_POLL: Duration = Duration::from_millis(50);

/// Wakes the `async` calls that wait for another process's lease, every [`LEASE_POLL`], from
/// one thread that runs only while some call waits.
static TICKS: Event = Event::new();

/// Whether the ticker thread runs.
static TICKING: AtomicBool = AtomicBool::new(false);

/// Starts the ticker thread unless it runs.
fn start_ticker() {
    if TICKING.swap(true, Ordering::AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("persistdict-lease-ticks".into())
        .spawn(|| {
            loop {
                std::thread::sleep(LEASE_POLL);
                // Stops only when nobody waited through a whole pause: a woken call listens
                // again at once if it still waits.
                if TICKS.total_listeners() == 0 {
                    TICKING.store(false, Ordering::Release);
                    // A call that listened after the count was taken started no ticker (this
                    // one still ran): go on for it.
                    if TICKS.total_listeners() == 0 || TICKING.swap(true, Ordering::AcqRel) {
                        return;
                    }
                }
                TICKS.notify(usize::MAX);
            }
        });
    if spawned.is_err() {
        // Without a ticker the waiting calls would never wake: they are woken now, and each
        // tries again to start one.
        TICKING.store(false, Ordering::Release);
        TICKS.notify(usize::MAX);
    }
}

/// What taking a call's lease among processes came to.
pub(super) enum Lease<V> {
    /// Another process stored the result meanwhile.
    Found(V),
    /// This process computes.
    Taken,
    /// This process computes without the lease (no store, a failure, a wait too long).
    Without,
}

impl<V, C> Memo<V, C>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
{
    /// Takes the lease of `key` among processes (see [`LEASE_WAIT`]), waiting while a live
    /// process holds it; the result, if that process stored one meanwhile.
    pub(super) fn lease(&self, key: &[u8]) -> Lease<V> {
        let deadline = Instant::now() + LEASE_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lease) = self.try_lease(key, deadline) {
                return lease;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(LEASE_POLL);
        }
    }

    /// [`lease`](Self::lease) for `async fn`: the wait awaits the process's lease ticker.
    pub(super) async fn lease_async(&self, key: &[u8]) -> Lease<V> {
        let deadline = Instant::now() + LEASE_WAIT;
        loop {
            if let Some(lease) = self.try_lease(key, deadline) {
                return lease;
            }
            // Listening before the ticker may stop: it looks for listeners before it does.
            let tick = TICKS.listen();
            start_ticker();
            tick.await;
        }
    }

    /// One attempt to take the lease of `key`: `None` while a live process holds it and
    /// `deadline` has not passed.
    fn try_lease(&self, key: &[u8], deadline: Instant) -> Option<Lease<V>> {
        let Some(dict) = &self.state().dict else {
            return Some(Lease::Without);
        };
        match dict.raw().claim(key) {
            Ok(Claim::Taken) => Some(Lease::Taken),
            // A value that no longer decodes is computed again, as on a miss.
            Ok(Claim::Stored) => Some(self.lookup(key).map_or(Lease::Without, Lease::Found)),
            Ok(Claim::Held) if Instant::now() < deadline => None,
            Ok(Claim::Held) => {
                tracing::warn!(
                    function = self.config.function,
                    waited = ?LEASE_WAIT,
                    "another process still computes the same call; computing here too",
                );
                Some(Lease::Without)
            }
            Err(error) => {
                tracing::warn!(
                    function = self.config.function,
                    error = &error as &dyn std::error::Error,
                    "cannot take the call's lease; computing without it",
                );
                Some(Lease::Without)
            }
        }
    }
}
