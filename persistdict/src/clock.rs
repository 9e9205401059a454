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

    /// [`now_ms`](Self::now_ms), cheaper and up to a scheduler tick (1 to 10 ms) behind on
    /// Linux. Good for deciding whether a second has passed; never stored.
    pub(crate) fn coarse_ms(&self) -> u64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => coarse_system_ms(),
        }
    }
}

#[cfg(target_os = "linux")]
fn coarse_system_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call writes only to it.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &raw mut ts) } == 0 {
        let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
        let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
        secs.saturating_mul(1_000).saturating_add(nanos / 1_000_000)
    } else {
        to_ms(SystemTime::now())
    }
}

#[cfg(not(target_os = "linux"))]
fn coarse_system_ms() -> u64 {
    to_ms(SystemTime::now())
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
