//! The time source of a dict: the system clock, or a manual one that tests move.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a dict reads the time for creation and access times and for expiry.
///
/// [`Clock::system`] (the default) reads the system clock. [`Clock::manual`] stands still
/// until moved, so tests can check expiry after "days" without sleeping. Clones share one
/// time.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use persistdict::Clock;
///
/// let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// let moved = clock.clone();
/// moved.advance(Duration::from_secs(86_400));
/// assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_700_086_400));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// `None`: the system clock; `Some`: manual time in ms since the Unix epoch.
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// A clock that shows `start` until it is moved. Millisecond resolution.
    #[must_use]
    pub fn manual(start: SystemTime) -> Self {
        Clock {
            manual: Some(Arc::new(AtomicU64::new(to_ms(start)))),
        }
    }

    /// The current time.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(ms) = &self.manual {
            ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock; does nothing to the system clock.
    pub fn set(&self, to: SystemTime) {
        if let Some(ms) = &self.manual {
            ms.store(to_ms(to), Ordering::SeqCst);
        }
    }

    /// The current time in ms since the Unix epoch.
    pub(crate) fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => to_ms(SystemTime::now()),
        }
    }
}

/// The time `ms` milliseconds after the Unix epoch.
pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
