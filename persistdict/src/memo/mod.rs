//! The runtime half of `#[memoize]`: a lazily opened dict of results, keyed by the encoded
//! arguments, with one computation at a time per key in a process (the flights here) and
//! among the processes of a machine (`lease.rs`). `key.rs` builds the keys.
//!
//! A failure of the cache never fails the call: if the dict can't be opened, read or written,
//! the function runs and its result is returned; the failure is logged with `tracing`.
//!
//! Keys are a 16-byte namespace (a blake3 digest of the function's path, its `version` and,
//! unless `invalidate_on_change = false`, the macro's digest of its signature and body) followed by the postcard
//! encoding of the arguments that are part of the key. Changing the function's code thus
//! changes every key: old results become unreachable, and expiry removes them.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use event_listener::{Event, EventListener, Listener};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attrs::{AttrOptions, BaseDir, resolve_path};
use crate::codec::{Codec, Postcard};
use crate::dict::PersistDict;
use crate::error::{Error, Result};
use crate::key::Scratch;
use crate::options::Durability;
use crate::store::memo_note;

mod key;
mod lease;

pub use key::MemoKey;
pub(crate) use key::{FunctionRecord, namespace_of, split_key};
use key::{KeyFlavor, PREFIX_ROOM, storage_key};
use lease::Lease;

/// Length of the namespace prefix of every key.
const NAMESPACE_LEN: usize = 16;

/// The results of one `#[memoize]`d function: reach it through the generated
/// `<function>_memo()`.
///
/// Results are stored in a [`PersistDict`] keyed by the encoded arguments, opened at the first
/// call. Several functions may share a directory: each has its own namespace in it.
pub struct Memo<V, C = Postcard> {
    config: MemoConfig,
    state: OnceLock<Arc<State<V, C>>>,
}

/// The states of every memoized function in this process, by path and namespace. The macro
/// gives a function and each of its companions a `Memo` of their own (an associated function
/// can't name a sibling without knowing it is one); they find one state here, so that they
/// share one dict handle, one cache and one set of calls in flight.
type Registry = Mutex<HashMap<(&'static str, [u8; NAMESPACE_LEN]), Arc<dyn Any + Send + Sync>>>;

static REGISTRY: OnceLock<Registry> = OnceLock::new();

/// What `#[memoize]` knows at compile time.
#[derive(Debug, Clone, Copy)]
pub struct MemoConfig {
    /// The `path` option.
    pub path: &'static str,
    /// The package the function is in, which names the folder of a relative `path`.
    pub package: Option<&'static str>,
    /// The function's module path and name.
    pub function: &'static str,
    /// A digest of the function's signature and body tokens, or "" with
    /// `invalidate_on_change = false`.
    pub source: &'static str,
    /// The `version` option.
    pub version: u32,
    /// The options shared with `#[persistent]`; durability defaults to `Eventual` here.
    pub options: AttrOptions,
}

struct State<V, C> {
    /// `None` when the dict could not be opened: calls then run uncached.
    dict: Option<PersistDict<Vec<u8>, V, C>>,
    namespace: [u8; NAMESPACE_LEN],
    /// Calls being computed, by key. Invariant: a flight is in the map exactly while its
    /// outcome is not set; its leader removes it, sets the outcome and notifies, in that order.
    flights: Mutex<HashMap<Vec<u8>, Arc<Flight<V>>>>,
}

struct Flight<V> {
    outcome: Mutex<Outcome<V>>,
    done: Event,
}

enum Outcome<V> {
    Computing,
    /// The result to hand to the waiters.
    Shared(V),
    /// Nothing to hand over (an error, a `None`, a panic): waiters compute themselves.
    Nothing,
}

/// The next step of a call.
enum Step<V: 'static> {
    Hit(V),
    Wait(EventListener, Arc<Flight<V>>),
    Lead(Leader<'static, V>),
    /// The call is reached from inside the computation of the same key on this thread (a
    /// recursion, a cycle through other memoized functions): it computes without waiting,
    /// and only the outermost call stores its result.
    Reenter,
}

thread_local! {
    /// The flights whose computation runs on this thread right now, innermost last: while a
    /// leader's function runs (sync), or while its future is polled (async).
    static COMPUTING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A flight's identity while it is alive (its address).
fn flight_id<V>(flight: &Arc<Flight<V>>) -> usize {
    Arc::as_ptr(flight).addr()
}

/// Marks a flight as computed by this thread until dropped (a panic included).
struct Computing(usize);

impl Computing {
    fn enter<V>(flight: &Arc<Flight<V>>) -> Self {
        Computing::push(flight_id(flight))
    }

    fn push(id: usize) -> Self {
        // During the thread's exit the mark is skipped; nothing is computed then.
        let _ = COMPUTING.try_with(|c| c.borrow_mut().push(id));
        Computing(id)
    }

    fn is_entered<V>(flight: &Arc<Flight<V>>) -> bool {
        let id = flight_id(flight);
        COMPUTING
            .try_with(|c| c.borrow().contains(&id))
            .unwrap_or(false)
    }
}

impl Drop for Computing {
    fn drop(&mut self) {
        let _ = COMPUTING.try_with(|c| {
            let mut c = c.borrow_mut();
            if let Some(i) = c.iter().rposition(|&id| id == self.0) {
                c.remove(i);
            }
        });
    }
}

/// A leader's future, marked as computed by the polling thread while it is polled, so that a
/// call it reaches with the same key (in the same poll) does not wait for it.
struct ComputingFuture<F> {
    flight: usize,
    run: Pin<Box<F>>,
}

impl<F: Future> Future for ComputingFuture<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _computing = Computing::push(self.flight);
        self.run.as_mut().poll(cx)
    }
}

impl<V, C> fmt::Debug for Memo<V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("function", &self.config.function)
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

/// The `Memo` of a function, for its `static`. Unbounded, so that a return type that can't be
/// stored is reported once, at the assertion on its own tokens.
#[must_use]
pub const fn new_memo<V, C>(config: MemoConfig) -> Memo<V, C> {
    Memo {
        config,
        state: OnceLock::new(),
    }
}

/// The storage key of a call with `args` (already in the dict's key encoding), or `None`
/// (logged) if they can't be encoded.
#[inline]
pub fn memo_key<V, C, A>(memo: &Memo<V, C>, args: &A) -> Option<MemoKey>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
    A: Serialize + ?Sized,
{
    memo.key(args)
}

/// Removes the stored result of the call whose key is `key`; returns whether there was one.
pub fn memo_invalidate<V, C>(memo: &Memo<V, C>, key: Option<MemoKey>) -> Result<bool>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
{
    memo.invalidate(key)
}

/// The result of the call with `key`: stored, shared from an identical call in flight, or
/// computed by `run`. `keep` picks what of a result is stored (`None`: nothing), `wrap` turns
/// a stored value back into a result.
#[inline]
pub fn memo_call<V, C, R>(
    memo: &'static Memo<V, C>,
    key: Option<MemoKey>,
    run: impl FnOnce() -> R,
    keep: fn(&R) -> Option<V>,
    wrap: fn(V) -> R,
) -> R
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
{
    memo.call(key, run, keep, wrap)
}

/// [`memo_call`] for `async fn`: waiting for an identical call in flight awaits (it does not
/// block the executor's thread). Works on any executor.
pub async fn memo_call_async<V, C, R>(
    memo: &'static Memo<V, C>,
    key: Option<MemoKey>,
    run: impl Future<Output = R>,
    keep: fn(&R) -> Option<V>,
    wrap: fn(V) -> R,
) -> R
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
{
    memo.call_async(key, run, keep, wrap).await
}

impl<V, C> Memo<V, C>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
{
    fn state(&self) -> &State<V, C> {
        self.state.get_or_init(|| {
            let config = &self.config;
            let mut hasher = blake3::Hasher::new();
            hasher.update(config.function.as_bytes());
            hasher.update(&[0]);
            hasher.update(&config.version.to_le_bytes());
            hasher.update(config.source.as_bytes());
            let mut namespace = [0; NAMESPACE_LEN];
            namespace.copy_from_slice(&hasher.finalize().as_bytes()[..NAMESPACE_LEN]);
            let mut registry = REGISTRY
                .get_or_init(Registry::default)
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let slot = registry
                .entry((config.path, namespace))
                .or_insert_with(|| Arc::new(self.new_state(namespace)));
            // Same path and namespace means the same function, hence the same types; should
            // that ever not hold, this `Memo` keeps a state of its own.
            Arc::clone(slot)
                .downcast::<State<V, C>>()
                .unwrap_or_else(|_| Arc::new(self.new_state(namespace)))
        })
    }

    fn new_state(&self, namespace: [u8; NAMESPACE_LEN]) -> State<V, C> {
        let config = &self.config;
        let dict = self
            .open(&namespace)
            .inspect_err(|error| {
                tracing::warn!(
                    function = config.function,
                    path = config.path,
                    error = error as &dyn std::error::Error,
                    "cannot open the memoization store; calls run uncached",
                );
            })
            .ok();
        State {
            dict,
            namespace,
            flights: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self, namespace: &[u8]) -> Result<PersistDict<Vec<u8>, V, C>> {
        let config = &self.config;
        let options = AttrOptions {
            name: Some(config.options.name.unwrap_or(config.function)),
            durability: Some(config.options.durability.unwrap_or(Durability::Eventual)),
            ..config.options
        };
        let mut builder =
            options.apply(PersistDict::<Vec<u8>, V>::builder().value_codec(C::default()));
        // Which function the namespace's keys belong to, for tools that list a store's
        // functions (`docs/format.md`).
        let record = FunctionRecord {
            function: config.function.to_owned(),
            version: config.version,
            tracks_source: !config.source.is_empty(),
        };
        builder
            .config
            .notes
            .push(memo_note(namespace, record.to_bytes()));
        builder.open(resolve_path(config.path, BaseDir::Cache, config.package)?)
    }

    /// The dict holding the results, or `None` if it could not be opened (the reason was
    /// logged at the first call). It also holds the results of other functions memoized in
    /// the same directory, under other keys.
    pub fn dict(&self) -> Option<&PersistDict<Vec<u8>, V, C>> {
        self.state().dict.as_ref()
    }

    /// Removes every stored result of this function (of its current version), in one
    /// transaction, and returns how many. Results of other functions in the same directory
    /// stay.
    pub fn clear(&self) -> Result<u64> {
        let state = self.state();
        let Some(dict) = &state.dict else {
            return Ok(0);
        };
        let mut mine = Vec::new();
        for key in dict.keys() {
            let key = key?;
            if key.starts_with(&state.namespace) {
                mine.push(key);
            }
        }
        dict.transaction(|tx| {
            let mut removed = 0;
            for key in &mine {
                removed += u64::from(tx.remove(&key[..])?);
            }
            Ok::<_, Error>(removed)
        })
    }

    /// See [`memo_key`].
    #[inline]
    fn key<A: Serialize + ?Sized>(&self, args: &A) -> Option<MemoKey> {
        let mut buf = Scratch::take();
        buf.extend_from_slice(&[0; PREFIX_ROOM]);
        buf.extend_from_slice(&self.state().namespace);
        match postcard::serialize_with_flavor(args, KeyFlavor(buf)) {
            Ok(bytes) => Some(storage_key(bytes)),
            Err(error) => {
                tracing::warn!(
                    function = self.config.function,
                    error = &error as &dyn std::error::Error,
                    "cannot encode the arguments; the call runs uncached",
                );
                None
            }
        }
    }

    /// See [`memo_invalidate`].
    fn invalidate(&self, key: Option<MemoKey>) -> Result<bool> {
        match (key, &self.state().dict) {
            (Some(key), Some(dict)) => dict.raw().write(|mut w| w.delete(key.bytes())),
            _ => Ok(false),
        }
    }

    /// See [`memo_call`].
    #[inline]
    fn call<R>(
        &'static self,
        key: Option<MemoKey>,
        run: impl FnOnce() -> R,
        keep: fn(&R) -> Option<V>,
        wrap: fn(V) -> R,
    ) -> R {
        let Some(key) = key else { return run() };
        loop {
            match self.step(key.bytes()) {
                Step::Hit(value) => return wrap(value),
                Step::Wait(listener, flight) => {
                    if flight.pending() {
                        listener.wait();
                    }
                    if let Some(value) = flight.shared() {
                        return wrap(value);
                    }
                }
                Step::Lead(mut leader) => {
                    // Other processes making the same call: one computes, the others wait.
                    match self.lease(key.bytes()) {
                        Lease::Found(value) => {
                            leader.share(Some(value.clone()));
                            return wrap(value);
                        }
                        Lease::Taken => leader.leased = true,
                        Lease::Without => {}
                    }
                    let result = {
                        let _computing = Computing::enter(&leader.flight);
                        run()
                    };
                    leader.finish(keep(&result));
                    return result;
                }
                // This thread computes this very call: waiting would wait for itself.
                Step::Reenter => return run(),
            }
        }
    }

    /// See [`memo_call_async`].
    async fn call_async<R>(
        &'static self,
        key: Option<MemoKey>,
        run: impl Future<Output = R>,
        keep: fn(&R) -> Option<V>,
        wrap: fn(V) -> R,
    ) -> R {
        let Some(key) = key else { return run.await };
        loop {
            match self.step(key.bytes()) {
                Step::Hit(value) => return wrap(value),
                Step::Wait(listener, flight) => {
                    if flight.pending() {
                        listener.await;
                    }
                    if let Some(value) = flight.shared() {
                        return wrap(value);
                    }
                }
                Step::Lead(mut leader) => {
                    // As in `call`; the wait for another process awaits.
                    match self.lease_async(key.bytes()).await {
                        Lease::Found(value) => {
                            leader.share(Some(value.clone()));
                            return wrap(value);
                        }
                        Lease::Taken => leader.leased = true,
                        Lease::Without => {}
                    }
                    let result = ComputingFuture {
                        flight: flight_id(&leader.flight),
                        run: Box::pin(run),
                    }
                    .await;
                    leader.finish(keep(&result));
                    return result;
                }
                // A call this task's computation of the same key awaits: waiting would wait
                // for itself.
                Step::Reenter => return run.await,
            }
        }
    }

    fn step(&'static self, key: &[u8]) -> Step<V> {
        if let Some(value) = self.lookup(key) {
            return Step::Hit(value);
        }
        let state = self.state();
        let flight = {
            let mut flights = state.flights.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(flight) = flights.get(key) {
                if Computing::is_entered(flight) {
                    return Step::Reenter;
                }
                // Listening under the map's lock: the leader can't notify before we listen.
                return Step::Wait(flight.done.listen(), Arc::clone(flight));
            }
            let flight = Arc::new(Flight {
                outcome: Mutex::new(Outcome::Computing),
                done: Event::new(),
            });
            flights.insert(key.to_vec(), Arc::clone(&flight));
            flight
        };
        let leader = Leader {
            memo: self,
            key: key.to_vec(),
            flight,
            store: None,
            leased: false,
        };
        // A leader that finished between our lookup and taking the lead stored its result.
        match self.lookup(key) {
            Some(value) => {
                leader.share(Some(value.clone()));
                Step::Hit(value)
            }
            None => Step::Lead(leader),
        }
    }

    /// The stored value under `key`. A value that no longer decodes (the return type changed)
    /// is a miss; it is overwritten by the next result.
    fn lookup(&self, key: &[u8]) -> Option<V> {
        let dict = self.state().dict.as_ref()?;
        match dict
            .raw()
            .get(key, |key, bytes| dict.decode_value(key, bytes).map(Some))
        {
            Ok(value) => value,
            Err(error @ (Error::Decode { .. } | Error::TypeChanged { .. })) => {
                tracing::debug!(
                    function = self.config.function,
                    error = &error as &dyn std::error::Error,
                    "stored result does not decode; recomputing",
                );
                None
            }
            Err(error) => {
                tracing::warn!(
                    function = self.config.function,
                    error = &error as &dyn std::error::Error,
                    "cannot read the memoization store; recomputing",
                );
                None
            }
        }
    }
}

impl<V: Clone> Flight<V> {
    fn outcome(&self) -> std::sync::MutexGuard<'_, Outcome<V>> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> bool {
        matches!(*self.outcome(), Outcome::Computing)
    }

    fn shared(&self) -> Option<V> {
        match &*self.outcome() {
            Outcome::Shared(value) => Some(value.clone()),
            Outcome::Computing | Outcome::Nothing => None,
        }
    }
}

/// The one computation of a key in flight. Dropping it without [`finish`](Self::finish)
/// (the function panicked, or its future was dropped) releases the waiters, who then compute
/// themselves.
struct Leader<'m, V> {
    memo: &'m dyn Publish<V>,
    key: Vec<u8>,
    flight: Arc<Flight<V>>,
    store: Option<V>,
    /// Whether this process holds the key's lease among processes, to give up when done.
    leased: bool,
}

/// The part of a [`Memo`] a leader needs, without the codec type.
trait Publish<V>: Sync {
    /// Stores `value` and gives up this process's lease of `key`, in one transaction.
    fn insert(&self, key: &[u8], value: V);
    /// Gives up this process's lease of `key`.
    fn release(&self, key: &[u8]);
    fn remove_flight(&self, key: &[u8]);
}

impl<V, C> Publish<V> for Memo<V, C>
where
    V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    C: Codec + Default,
{
    fn insert(&self, key: &[u8], value: V) {
        let Some(dict) = &self.state().dict else {
            return;
        };
        let bytes = match dict.encode_value(&value) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(
                    function = self.config.function,
                    error = &error as &dyn std::error::Error,
                    "cannot store the result",
                );
                return;
            }
        };
        let mut value = Some(value);
        let stored = dict.raw().write(|mut w| {
            w.put(key, &bytes, value.take())?;
            w.release_lease(key)
        });
        if let Err(error) = stored {
            tracing::warn!(
                function = self.config.function,
                error = &error as &dyn std::error::Error,
                "cannot store the result",
            );
        }
    }

    fn release(&self, key: &[u8]) {
        if let Some(dict) = &self.state().dict
            && let Err(error) = dict.raw().release(key)
        {
            tracing::warn!(
                function = self.config.function,
                error = &error as &dyn std::error::Error,
                "cannot give up the call's lease; other processes take it over when this one exits",
            );
        }
    }

    fn remove_flight(&self, key: &[u8]) {
        self.state()
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

impl<V: Clone> Leader<'_, V> {
    /// Stores `value` (if any) and hands it to the waiters.
    fn finish(mut self, value: Option<V>) {
        if let Some(value) = &value {
            self.memo.insert(&self.key, value.clone());
            self.leased = false;
        }
        self.store = value;
    }

    /// Hands `value` to the waiters without storing it.
    fn share(mut self, value: Option<V>) {
        self.store = value;
    }
}

impl<V> Drop for Leader<'_, V> {
    fn drop(&mut self) {
        // Nothing stored (an error, a panic): another process may compute.
        if self.leased {
            self.memo.release(&self.key);
        }
        self.memo.remove_flight(&self.key);
        let outcome = self.store.take().map_or(Outcome::Nothing, Outcome::Shared);
        *self
            .flight
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = outcome;
        self.flight.done.notify(usize::MAX);
    }
}
