//! A codec that encrypts values with ChaCha20-Poly1305 (an AEAD: tampering is detected).
//!
//! ```sh
//! cargo run --example encrypted --features persistdict-examples/codecs
//! ```
//!
//! Each value gets a fresh random nonce, stored in front of its ciphertext. Keys are not
//! encrypted (they must stay comparable); hash or encrypt them yourself if they are secret.

use std::borrow::Cow;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use persistdict::{BoxError, Codec, PersistDict, Postcard};

const NONCE_LEN: usize = 12;

struct Encrypted {
    cipher: ChaCha20Poly1305,
}

impl Codec for Encrypted {
    fn name(&self) -> Cow<'static, str> {
        "chacha20poly1305+postcard".into()
    }

    fn encode_into<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        let plain = Postcard.encode(value)?;
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain.as_slice())
            .map_err(|_| "encryption failed")?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(())
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        if bytes.len() < NONCE_LEN {
            return Err("ciphertext shorter than its nonce".into());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| "wrong key or tampered value")?;
        Postcard.decode(&plain)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real program loads its key from a secret store; this one makes one up.
    let key = Key::from([7_u8; 32]);
    let dir = tempfile::tempdir()?;
    let secrets: PersistDict<String, String, Encrypted> = PersistDict::builder()
        .value_codec(Encrypted {
            cipher: ChaCha20Poly1305::new(&key),
        })
        .open(dir.path())?;
    secrets.insert("api-token".into(), "s3cr3t".into())?;
    println!("decrypted: {:?}", secrets.get("api-token")?);
    drop(secrets);

    // With another key, the value is refused (a typed error), not garbage.
    let wrong: PersistDict<String, String, Encrypted> = PersistDict::builder()
        .value_codec(Encrypted {
            cipher: ChaCha20Poly1305::new(&Key::from([8_u8; 32])),
        })
        .open(dir.path())?;
    match wrong.get("api-token") {
        Err(e) => println!(
            "with the wrong key: {e} ({})",
            std::error::Error::source(&e).map_or(String::new(), ToString::to_string)
        ),
        Ok(v) => return Err(format!("decrypted with the wrong key: {v:?}").into()),
    }
    Ok(())
}
