//! A codec that compresses values with zstd on top of postcard, for large, repetitive values.
//!
//! ```sh
//! cargo run --example compressed --features persistdict-examples/codecs
//! ```

use std::borrow::Cow;

use persistdict::{BoxError, Codec, PersistDict, Postcard};

/// postcard, then zstd. Its name records both, so a dict made with it can't be opened
/// by mistake with plain postcard.
struct Zstd {
    level: i32,
}

impl Codec for Zstd {
    fn name(&self) -> Cow<'static, str> {
        "zstd+postcard".into()
    }

    fn encode_into<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        let plain = Postcard.encode(value)?;
        out.extend_from_slice(&zstd::bulk::compress(&plain, self.level)?);
        Ok(())
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        // A frame records its content size; refuse frames claiming more than 1 GiB.
        let plain = zstd::bulk::decompress(bytes, 1 << 30)?;
        Postcard.decode(&plain)
    }
}

fn main() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let d: PersistDict<String, String, Zstd> = PersistDict::builder()
        .value_codec(Zstd { level: 3 })
        .open(dir.path())?;
    let text = "All work and no play makes Jack a dull boy. ".repeat(2_000);
    d.insert("jack".into(), text.clone())?;
    assert_eq!(d.get("jack")?.as_deref(), Some(text.as_str()));
    let stored = Zstd { level: 3 }.encode(&text)?.len();
    println!("{} bytes of text stored as {stored} bytes", text.len());
    Ok(())
}
