//! Built-in and user codecs for keys and values.

mod common;

use std::borrow::Cow;

use persistdict::{Bincode, BoxError, Codec, Json, PersistDict};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Doc {
    id: u64,
    title: String,
    scores: Vec<f32>,
}

fn doc(i: u64) -> Doc {
    Doc {
        id: i,
        title: format!("doc {i}"),
        scores: vec![0.5, f32::from(i as u16)],
    }
}

fn round_trip<C: Codec, KC: Codec>(value_codec: C, key_codec: KC) {
    let dir = common::tempdir();
    let open = |c, k| {
        PersistDict::<(String, u32), Doc>::builder()
            .value_codec(c)
            .key_codec(k)
            .open(dir.path())
            .unwrap()
    };
    let d = open(value_codec, key_codec);
    d.extend((0..50).map(|i| ((format!("k{i}"), i as u32), doc(i))))
        .unwrap();
    assert_eq!(d.get(&("k7".to_string(), 7)).unwrap(), Some(doc(7)));
    let all: Vec<_> = d.iter().map(Result::unwrap).collect();
    assert_eq!(all.len(), 50);
    assert_eq!(all[49], (("k49".to_string(), 49), doc(49)));
}

#[test]
fn json_values_and_keys_round_trip() {
    round_trip(Json, Json);
}

#[test]
fn bincode_values_and_keys_round_trip() {
    round_trip(Bincode, Bincode);
}

/// A user codec: postcard bytes XOR-ed with a key byte (a stand-in for a real transform).
struct Xor(u8);

impl Codec for Xor {
    fn name(&self) -> Cow<'static, str> {
        "xor+postcard".into()
    }
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        let start = out.len();
        persistdict::Postcard.encode_into(value, out)?;
        out[start..].iter_mut().for_each(|b| *b ^= self.0);
        Ok(())
    }
    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        let plain: Vec<u8> = bytes.iter().map(|b| b ^ self.0).collect();
        persistdict::Postcard.decode(&plain)
    }
}

#[test]
fn custom_key_and_value_codecs_round_trip() {
    round_trip(Xor(0x5a), Xor(0xa5));
}

#[test]
fn custom_codec_bytes_are_what_is_stored() {
    let dir = common::tempdir();
    let d: PersistDict<String, String, Xor> = PersistDict::builder()
        .value_codec(Xor(0xff))
        .open(dir.path())
        .unwrap();
    d.insert("k".into(), "secret".into()).unwrap();
    drop(d);
    // Read with a codec of the same name but another byte: the bytes don't decode as postcard
    // text, proving the stored bytes went through the transform.
    let other: PersistDict<String, String, Xor> = PersistDict::builder()
        .value_codec(Xor(0x0f))
        .open(dir.path())
        .unwrap();
    assert_ne!(other.get("k").ok().flatten().as_deref(), Some("secret"));
}

fn json_dict<K, V>(dir: &std::path::Path, cache: usize) -> PersistDict<K, V, Json, Json>
where
    K: Serialize + serde::de::DeserializeOwned,
    V: Serialize + serde::de::DeserializeOwned + Clone,
{
    PersistDict::builder()
        .value_codec(Json)
        .key_codec(Json)
        .cache_capacity(cache)
        .open(dir)
        .unwrap()
}

#[test]
fn the_json_codec_refuses_values_it_cannot_store_faithfully() {
    let dir = common::tempdir();
    let d: PersistDict<String, f64, Json, Json> = json_dict(dir.path(), 16);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = d.insert("x".into(), bad).unwrap_err();
        assert!(
            matches!(err, persistdict::Error::Encode { what: "value", .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(d.get("x").unwrap(), None, "nothing was stored");
    let opt: PersistDict<String, Option<f64>, Json, Json> = json_dict(&dir.path().join("o"), 16);
    assert!(
        opt.insert("x".into(), Some(f64::NAN)).is_err(),
        "Some(NaN) would read as None"
    );
    opt.insert("y".into(), None).unwrap();
    assert_eq!(opt.get("y").unwrap(), Some(None));
}

#[test]
fn the_json_codec_refuses_keys_that_would_collide() {
    let dir = common::tempdir();
    let d: PersistDict<f64, u8, Json, Json> = json_dict(dir.path(), 16);
    assert!(d.insert(f64::INFINITY, 1).is_err());
    assert!(d.insert(f64::NAN, 2).is_err());
    assert_eq!(d.len().unwrap(), 0);
}

#[test]
fn json_floats_read_back_exactly_in_every_handle() {
    let dir = common::tempdir();
    let writer: PersistDict<String, f64, Json, Json> = json_dict(dir.path(), 16);
    let reader: PersistDict<String, f64, Json, Json> = json_dict(dir.path(), 0);
    for x in [
        123_456_789.123_456_79_f64,
        0.1 + 0.2,
        1e-300,
        f64::MAX,
        -0.0,
    ] {
        writer.insert("x".into(), x).unwrap();
        let (cached, stored) = (
            writer.get("x").unwrap().unwrap(),
            reader.get("x").unwrap().unwrap(),
        );
        assert_eq!(cached.to_bits(), x.to_bits(), "{x} in the writer's cache");
        assert_eq!(stored.to_bits(), x.to_bits(), "{x} read from disk");
    }
}
