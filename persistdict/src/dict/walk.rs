//! Iteration in insertion order: what each kind of walk yields, decoded from the untyped
//! walk's entries.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::PersistDict;
use crate::codec::{Codec, Postcard};
use crate::error::{KeyBytes, Result};
use crate::raw::RawWalk;

/// What a walk yields for each entry, made from its encoded key and stored value bytes. A
/// type rather than a function pointer, so that the decoding is inlined into the walk.
pub(super) trait WalkItem<K, V, C, KC> {
    type Out;
    /// Whether the walk reads the values; if not, `make` is given empty value bytes.
    const VALUES: bool;
    /// The item of one entry, or `None` to skip an entry whose value reads as missing.
    fn make(dict: &PersistDict<K, V, C, KC>, key: &[u8], value: &[u8])
    -> Result<Option<Self::Out>>;
}

/// A [`WalkItem`] named `$name`, yielding `$out` made by `$make`.
macro_rules! walk_item {
    (
        $(#[$doc:meta])* $name:ident, values: $values:expr, $out:ty,
        |$dict:ident, $key:ident, $value:tt| $make:expr
    ) => {
        $(#[$doc])*
        pub(super) struct $name;

        impl<K, V, C, KC> WalkItem<K, V, C, KC> for $name
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned + Clone,
            C: Codec,
            KC: Codec,
        {
            type Out = $out;
            const VALUES: bool = $values;
            fn make(
                $dict: &PersistDict<K, V, C, KC>,
                $key: &[u8],
                $value: &[u8],
            ) -> Result<Option<$out>> {
                $make
            }
        }
    };
}

walk_item!(
    /// Walks the entries.
    Pairs, values: true, (K, V),
    |dict, key, value| match dict.decode_found(key, value)? {
        Some(value) => Ok(Some((dict.decode_key(key)?, value))),
        None => Ok(None),
    }
);
walk_item!(
    /// Walks the keys.
    KeysOnly, values: false, K,
    |dict, key, _| dict.decode_key(key).map(Some)
);
walk_item!(
    /// Walks the values.
    ValuesOnly, values: true, V,
    |dict, key, value| dict.decode_found(key, value)
);
walk_item!(
    /// Walks the values for the integrity check: the key of each that does not decode as `V`.
    Undecodable, values: true, Option<KeyBytes>,
    |dict, key, value| {
        let failed = dict.decode_value(key, value).is_err();
        Ok(Some(failed.then(|| KeyBytes::new(key))))
    }
);

/// A walk over the insertion order, one item per live entry: the untyped walk
/// (`crate::raw::RawWalk`, which reads the chunks) with each entry decoded as it is asked for.
pub(super) struct Walk<K, V, C, KC, W> {
    /// Declared before `dict`, so dropped first: a snapshot walk's read transaction must end
    /// before the last handle, which closes the environment, is dropped.
    raw: RawWalk,
    dict: PersistDict<K, V, C, KC>,
    item: PhantomData<fn() -> W>,
}

impl<K, V, C, KC, W> Walk<K, V, C, KC, W>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
    W: WalkItem<K, V, C, KC>,
{
    /// A walk of `dict`; with `snapshot`, of one snapshot of it.
    pub(super) fn new(dict: PersistDict<K, V, C, KC>, snapshot: bool) -> Self {
        Walk {
            raw: dict.raw().walk(W::VALUES, snapshot),
            dict,
            item: PhantomData,
        }
    }
}

impl<K, V, C, KC, W> Iterator for Walk<K, V, C, KC, W>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
    W: WalkItem<K, V, C, KC>,
{
    type Item = Result<W::Out>;

    fn next(&mut self) -> Option<Result<W::Out>> {
        loop {
            let entry = self.dict.raw().next_in(&mut self.raw)?;
            // `None`: a value that reads as missing (`Builder::undecodable_as_missing`).
            match entry.and_then(|(key, value)| W::make(&self.dict, key, value)) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(error) => return Some(Err(self.dict.show_key(error))),
            }
        }
    }
}

/// A public iterator over a [`Walk`] yielding `$item`s.
macro_rules! walk_iterator {
    ($(#[$doc:meta])* $name:ident => $walk:ty, $item:ty) => {
        $(#[$doc])*
        pub struct $name<K, V, C = Postcard, KC = Postcard>(Walk<K, V, C, KC, $walk>);

        impl<K, V, C, KC> $name<K, V, C, KC>
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned + Clone,
            C: Codec,
            KC: Codec,
        {
            pub(super) fn new(dict: PersistDict<K, V, C, KC>, snapshot: bool) -> Self {
                $name(Walk::new(dict, snapshot))
            }
        }

        impl<K, V, C, KC> fmt::Debug for $name<K, V, C, KC> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("dict", &self.0.dict)
                    .finish_non_exhaustive()
            }
        }

        impl<K, V, C, KC> Iterator for $name<K, V, C, KC>
        where
            K: Serialize + DeserializeOwned,
            V: Serialize + DeserializeOwned + Clone,
            C: Codec,
            KC: Codec,
        {
            type Item = Result<$item>;

            fn next(&mut self) -> Option<Self::Item> {
                self.0.next()
            }
        }
    };
}

walk_iterator!(
    /// Iterator over a dict's entries; see [`PersistDict::iter`].
    Iter => Pairs, (K, V)
);
walk_iterator!(
    /// Iterator over a dict's keys; see [`PersistDict::keys`].
    Keys => KeysOnly, K
);
walk_iterator!(
    /// Iterator over a dict's values; see [`PersistDict::values`].
    Values => ValuesOnly, V
);

impl<K, V, C, KC> PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    /// The keys, in insertion order. See [`iter`](Self::iter).
    #[must_use]
    pub fn keys(&self) -> Keys<K, V, C, KC> {
        Keys::new(self.clone(), false)
    }

    /// The values, in insertion order. See [`iter`](Self::iter).
    #[must_use]
    pub fn values(&self) -> Values<K, V, C, KC> {
        Values::new(self.clone(), false)
    }

    /// The entries, in insertion order.
    ///
    /// The walk is streamed: it reads a chunk of entries (about 4 MiB of keys and values) in a
    /// short read transaction of its own and holds only that chunk in memory; the first chunk
    /// holds one entry, each later one up to sixteen times the one before. Each chunk is one
    /// snapshot, and a walk is not: an entry removed after its chunk was read is still
    /// yielded; one inserted meanwhile is yielded if it comes after the walk's position in
    /// insertion order and its chunk was not read yet; a transaction committed while the walk
    /// runs may be seen in part (what falls into chunks read after it). For one snapshot of
    /// the whole dict, use [`iter_snapshot`](Self::iter_snapshot).
    ///
    /// An entry that can't be decoded yields an `Err` and the walk goes on with the next.
    #[must_use]
    pub fn iter(&self) -> Iter<K, V, C, KC> {
        Iter::new(self.clone(), false)
    }

    /// The entries, in insertion order, exactly as they were when the walk began: one read
    /// transaction serves the whole walk, so writes made meanwhile, by this process or any
    /// other, are not seen.
    ///
    /// The cost: while the walk is open, LMDB can't reuse the pages that writers free (the
    /// file grows by what is rewritten meanwhile), and this process can't change the map's
    /// size, so a write that needs a larger map fails with [`Error::SnapshotOpen`](crate::Error::SnapshotOpen) until the
    /// walk is dropped. Prefer [`iter`](Self::iter) unless the walk must be consistent.
    ///
    /// # Errors
    ///
    /// Each item is a `Result`; an error opening the snapshot is the first item.
    #[must_use]
    pub fn iter_snapshot(&self) -> Iter<K, V, C, KC> {
        Iter::new(self.clone(), true)
    }
}

impl<K, V, C, KC> IntoIterator for &PersistDict<K, V, C, KC>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned + Clone,
    C: Codec,
    KC: Codec,
{
    type Item = Result<(K, V)>;
    type IntoIter = Iter<K, V, C, KC>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}
