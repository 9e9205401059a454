#![doc = include_str!("../../README.md")]
#![warn(missing_docs)]

mod background;
mod cache;
mod clock;
mod codec;
mod dict;
mod env;
mod error;
mod key;
mod options;
mod record;

pub use background::{Background, IntegrityReport};
pub use clock::Clock;
#[cfg(feature = "bincode")]
pub use codec::Bincode;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, Postcard};
pub use dict::{Iter, Keys, Metadata, PersistDict, Stats, Transaction, Values};
pub use env::Durability;
pub use error::{BoxError, Error, KeyBytes, Result};
pub use options::Builder;
