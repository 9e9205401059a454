//! How keys and values become bytes.
//!
//! A [`Codec`] turns any `Serialize` type into bytes and back. [`Postcard`] is the default for
//! keys and values; [`Json`] and [`Bincode`] are available behind the `json` and `bincode`
//! features. A codec can wrap another one to compress or encrypt what it produces: see
//! `examples/compressed.rs` and `examples/encrypted.rs`.
//!
//! A dict stores the [`name`](Codec::name) of its codecs when it is created and refuses to open
//! with codecs of another name, so give a wrapping codec a name that includes the inner one's
//! (for example `"zstd+postcard"`).

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{BoxError, Error, Result};

/// A serde format (optionally with a byte transform such as compression) used to store keys
/// or values.
///
/// # Contract
///
/// - `decode(encode(v)) == v` for every value the codec accepts.
/// - A key codec must be deterministic: equal keys give equal bytes. Borrowed lookups rely on
///   it too: `get("a")` on a `PersistDict<String, _>` works because `str` and `String` encode
///   alike in every serde format, just as `HashMap` relies on `Borrow` types hashing alike.
/// - `decode` must reject bytes it did not produce with an error, never panic.
///
/// # Examples
///
/// A codec that stores values as JSON text, to keep them readable with other tools:
///
/// ```
/// use std::borrow::Cow;
/// use persistdict::{BoxError, Codec};
///
/// struct Text;
///
/// impl Codec for Text {
///     fn name(&self) -> Cow<'static, str> {
///         "text-json".into()
///     }
///     fn encode_into<T: serde::Serialize + ?Sized>(
///         &self,
///         value: &T,
///         out: &mut Vec<u8>,
///     ) -> Result<(), BoxError> {
///         Ok(serde_json::to_writer(out, value)?)
///     }
///     fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
///         Ok(serde_json::from_slice(bytes)?)
///     }
/// }
/// ```
pub trait Codec: Send + Sync + 'static {
    /// The codec's name, stored in the dict at creation and checked at every open.
    fn name(&self) -> Cow<'static, str>;

    /// Appends the encoding of `value` to `out`.
    ///
    /// # Errors
    ///
    /// When the value can't be represented in this format.
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError>;

    /// Decodes a value from exactly `bytes`.
    ///
    /// # Errors
    ///
    /// When `bytes` is not an encoding of a `T` (trailing bytes included).
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError>;

    /// The encoding of `value` in a new buffer.
    ///
    /// # Errors
    ///
    /// As [`encode_into`](Codec::encode_into).
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        let mut out = Vec::new();
        self.encode_into(value, &mut out)?;
        Ok(out)
    }

    /// Whether every value this codec encodes decodes to the same value (default `true`).
    /// A codec that answers `false` (JSON writes `NaN` and infinities as `null`) has each key
    /// and value it writes decoded again and compared with the original: what it can't store
    /// faithfully is refused with [`Error::Encode`], so that the writer's cache never holds a
    /// value other handles would read differently, and two keys never meet under one
    /// encoding. That costs a decode per write.
    fn round_trips(&self) -> bool {
        true
    }

    /// Whether the encoding names what it holds (field names, kinds of values), as JSON does,
    /// so that decoding as another type fails by itself or reads what was meant (default
    /// `false`). Values of a codec that doesn't are stored with a tag of their type's
    /// structure, checked at every read; those of one that does are not, so that a field added
    /// with `#[serde(default)]` reads old values.
    fn self_describing(&self) -> bool {
        false
    }
}

/// [`Error::Encode`] unless `bytes`, `original` as `codec` encoded it, decode as a `D` that
/// serializes as `original` does (compared through their `Debug`-like rendering, so no
/// `PartialEq` is needed). Checked only for codecs that don't
/// [round-trip](Codec::round_trips); for the others it is free.
pub(crate) fn check_faithful<T, D>(
    codec: &impl Codec,
    what: &'static str,
    original: &T,
    bytes: &[u8],
) -> Result<()>
where
    T: Serialize + ?Sized,
    D: Serialize + DeserializeOwned,
{
    if codec.round_trips() {
        return Ok(());
    }
    let refuse = |reason: String| Error::Encode {
        what,
        type_name: std::any::type_name::<T>(),
        source: reason.into(),
    };
    let decoded: D = codec.decode(bytes).map_err(|e| {
        refuse(format!(
            "the {} codec can't store it faithfully: it does not decode again ({e})",
            codec.name()
        ))
    })?;
    let (wrote, reads) = (
        format!("{:?}", serde_fmt::to_debug(original)),
        format!("{:?}", serde_fmt::to_debug(&decoded)),
    );
    if wrote == reads {
        Ok(())
    } else {
        Err(refuse(format!(
            "the {} codec can't store it faithfully: {wrote} would read back as {reads}",
            codec.name()
        )))
    }
}

/// `value` encoded by `codec`, or an [`Error::Encode`] saying it was a `what` ("key", ...).
pub(crate) fn encode_as<T: Serialize + ?Sized>(
    codec: &impl Codec,
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_as_into(codec, what, value, &mut out)?;
    Ok(out)
}

/// [`encode_as`] into the end of `out`.
pub(crate) fn encode_as_into<T: Serialize + ?Sized>(
    codec: &impl Codec,
    what: &'static str,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<()> {
    codec
        .encode_into(value, out)
        .map_err(|source| Error::Encode {
            what,
            type_name: std::any::type_name::<T>(),
            source,
        })
}

/// The default codec: [postcard](https://docs.rs/postcard), a compact, stable binary format.
#[derive(Debug, Clone, Copy, Default)]
pub struct Postcard;

impl Codec for Postcard {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("postcard")
    }

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        postcard::serialize_with_flavor(value, Appending(out))?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        let (value, rest) = postcard::take_from_bytes(bytes)?;
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(format!("{} trailing bytes after the value", rest.len()).into())
        }
    }
}

/// Postcard's output appended to a buffer in place. Its `to_extend` takes the buffer by value
/// and hands it back in a `Result`: in a profile of cache hits those moves took 13% of a hit,
/// more than the encoding itself.
struct Appending<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Appending<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// JSON ([serde_json](https://docs.rs/serde_json)): larger and slower than postcard, but
/// readable by any tool.
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

#[cfg(feature = "json")]
impl Codec for Json {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("json")
    }

    /// `NaN` and infinities are written as `null`.
    fn round_trips(&self) -> bool {
        false
    }

    fn self_describing(&self) -> bool {
        true
    }

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        Ok(serde_json::to_writer(out, value)?)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// [bincode 2](https://docs.rs/bincode) with its standard configuration.
///
/// bincode is no longer maintained (its 3.0 release is an empty tombstone and RUSTSEC-2025-0141
/// covers 1.x and 2.x); this codec exists to read and write data that already uses it. Prefer
/// [`Postcard`] for new dicts.
#[cfg(feature = "bincode")]
#[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl Codec for Bincode {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("bincode2")
    }

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())?;
        Ok(())
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())?;
        if read == bytes.len() {
            Ok(value)
        } else {
            Err(format!("{} trailing bytes after the value", bytes.len() - read).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<C: Codec>(codec: &C) {
        let value = (42_u32, String::from("héllo"), vec![1.5_f32, -2.0]);
        let bytes = codec.encode(&value).unwrap();
        let back: (u32, String, Vec<f32>) = codec.decode(&bytes).unwrap();
        assert_eq!(back, value);
        // A truncated encoding is an error, never a panic or a silent partial value.
        assert!(
            codec
                .decode::<(u32, String, Vec<f32>)>(&bytes[..bytes.len() - 1])
                .is_err()
        );
    }

    #[test]
    fn postcard_round_trips_and_rejects_truncation() {
        round_trip(&Postcard);
    }

    #[test]
    fn postcard_rejects_trailing_bytes() {
        let mut bytes = Postcard.encode(&7_u8).unwrap();
        bytes.push(0);
        assert!(Postcard.decode::<u8>(&bytes).is_err());
    }

    #[test]
    fn encode_into_appends_after_existing_bytes() {
        let mut out = vec![9, 9];
        Postcard.encode_into(&1_u8, &mut out).unwrap();
        assert_eq!(out, [9, 9, 1]);
    }

    #[test]
    fn str_and_string_encode_alike() {
        assert_eq!(
            Postcard.encode("ab").unwrap(),
            Postcard.encode(&String::from("ab")).unwrap()
        );
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trips_and_rejects_truncation() {
        round_trip(&Json);
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_round_trips_and_rejects_truncation() {
        round_trip(&Bincode);
    }
}
