//! The bytes on disk are the format `docs/format.md` documents; a change here is a format
//! change and needs a new format version.

mod common;

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use heed::types::{Bytes, Str};
use persistdict::{Clock, PersistDict};

const T0: u64 = 1_700_000_000_000;

/// The stored shape of `u32` (its variant of the shape enum, postcard-encoded) and the tag in
/// front of every `u32` value: the first 8 bytes of the shape's blake3 digest.
const U32_SHAPE: [u8; 1] = [9];

/// The shape of `String`, the key type (postcard: variant 15 of `Shape`).
const STRING_SHAPE: [u8; 1] = [15];

fn u32_tag() -> [u8; 8] {
    blake3::hash(&U32_SHAPE).as_bytes()[..8].try_into().unwrap()
}

/// A `u32` value as a dict of format 2 stores it: its type's tag, then postcard.
fn tagged(postcard: &[u8]) -> Vec<u8> {
    [&u32_tag()[..], postcard].concat()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::new(), |out, b| out + &format!("{b:02x}"))
}

fn record(seq: u64, created: u64, accessed: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut r = vec![1, 0, 0, 0];
    r.extend_from_slice(&(key.len() as u32).to_le_bytes());
    r.extend_from_slice(&seq.to_le_bytes());
    r.extend_from_slice(&created.to_le_bytes());
    r.extend_from_slice(&accessed.to_le_bytes());
    r.extend_from_slice(key);
    r.extend_from_slice(value);
    r
}

/// A closed dict's environment, opened with heed alone, and its databases.
struct Raw {
    env: heed::Env,
    entries: heed::Database<'static, Bytes, Bytes>,
    hashed: heed::Database<'static, Bytes, Bytes>,
    order: heed::Database<'static, Bytes, Bytes>,
    info: heed::Database<'static, Str, Bytes>,
}

fn open_raw(dir: &Path) -> Raw {
    let env = unsafe { heed::EnvOpenOptions::new().max_dbs(8).open(dir).unwrap() };
    let rtxn = env.read_txn().unwrap();
    let (entries, hashed, order, info) = env
        .open_databases_and_commit(rtxn, |o, r| {
            Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit((
                o.open_database::<Bytes, Bytes>(r, Some("entries"))?
                    .unwrap(),
                o.open_database::<Bytes, Bytes>(r, Some("hashed"))?.unwrap(),
                o.open_database::<Bytes, Bytes>(r, Some("order"))?.unwrap(),
                o.open_database::<Str, Bytes>(r, Some("info"))?.unwrap(),
            )))
        })
        .unwrap()
        .unwrap_commit();
    Raw {
        env,
        entries,
        hashed,
        order,
        info,
    }
}

#[test]
fn stored_bytes_match_the_documented_format() {
    let dir = common::tempdir();
    {
        let clock = Clock::manual(UNIX_EPOCH + Duration::from_millis(T0));
        let d: PersistDict<String, u32> = PersistDict::builder()
            .key_size_limit(8)
            .clock(clock.clone())
            .open(dir.path())
            .unwrap();
        d.insert("a".into(), 7).unwrap();
        clock.advance(Duration::from_millis(5));
        d.insert("a-long-key".into(), 300).unwrap();
        d.insert("a".into(), 8).unwrap();
    }
    let Raw {
        env,
        entries,
        hashed,
        order,
        info,
    } = open_raw(dir.path());
    let rtxn = env.read_txn().unwrap();

    // "a" (postcard: 01 61) fits the limit: stored raw. Overwritten: keeps seq 0 and ctime.
    assert_eq!(
        entries.get(&rtxn, &[1, b'a']).unwrap().unwrap(),
        record(0, T0, T0 + 5, b"", &tagged(&[8]))
    );
    // "a-long-key" (11 bytes encoded) doesn't: a bucket under 8 bytes of its blake3 digest.
    let long_key = [&[10_u8][..], b"a-long-key"].concat();
    let digest = blake3::hash(&long_key);
    let rec = record(1, T0 + 5, T0 + 5, &long_key, &tagged(&[0xac, 0x02])); // varint 300
    let mut bucket = (rec.len() as u32).to_le_bytes().to_vec();
    bucket.extend_from_slice(&rec);
    assert_eq!(
        hashed.get(&rtxn, &digest.as_bytes()[..8]).unwrap().unwrap(),
        bucket
    );
    // The insertion order: big-endian sequence number -> encoded key.
    let order: Vec<_> = order.iter(&rtxn).unwrap().map(Result::unwrap).collect();
    assert_eq!(
        order,
        [
            (&0_u64.to_be_bytes()[..], &[1, b'a'][..]),
            (&1_u64.to_be_bytes()[..], &long_key[..])
        ]
    );
    // The settings record, the shapes of the key and value types, and the expiry (none). The
    // hashed key made the key order (set for the new, empty dict) unknown.
    let info: Vec<(&str, &[u8])> = info.iter(&rtxn).unwrap().map(Result::unwrap).collect();
    let type_key = format!("type:{}", hex(&u32_tag()));
    let key_type_key = format!(
        "key_type:{}",
        hex(&blake3::hash(&STRING_SHAPE).as_bytes()[..8])
    );
    assert_eq!(
        info,
        [
            ("expire_after", &0_u64.to_le_bytes()[..]),
            ("format_version", &2_u32.to_le_bytes()[..]),
            ("key_codec", b"postcard"),
            ("key_order", &[0][..]),
            ("key_size_limit", &8_u32.to_le_bytes()[..]),
            (key_type_key.as_str(), &STRING_SHAPE[..]),
            (type_key.as_str(), &U32_SHAPE[..]),
            ("value_codec", b"postcard"),
        ]
    );
}

#[test]
fn a_dict_of_format_1_is_read_and_written_without_type_tags() {
    let dir = common::tempdir();
    drop(PersistDict::<String, u32>::open(dir.path()).unwrap());
    // Made format 1: no type records, and a value as format 1 stores it (postcard alone).
    {
        let raw = open_raw(dir.path());
        let mut wtxn = raw.env.write_txn().unwrap();
        raw.info
            .put(&mut wtxn, "format_version", &1_u32.to_le_bytes())
            .unwrap();
        raw.info
            .delete(&mut wtxn, &format!("type:{}", hex(&u32_tag())))
            .unwrap();
        raw.entries
            .put(&mut wtxn, &[1, b'a'], &record(0, T0, T0, b"", &[7]))
            .unwrap();
        raw.order
            .put(&mut wtxn, &0_u64.to_be_bytes(), &[1, b'a'])
            .unwrap();
        wtxn.commit().unwrap();
        raw.env.prepare_for_closing().wait();
    }
    {
        let d: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
        assert_eq!(d.get("a").unwrap(), Some(7));
        d.insert("b".into(), 8).unwrap();
        assert_eq!(d.metadata("b").unwrap().unwrap().value_size, 1);
    }
    let raw = open_raw(dir.path());
    let rtxn = raw.env.read_txn().unwrap();
    let stored = raw.entries.get(&rtxn, &[1, b'b']).unwrap().unwrap();
    assert_eq!(stored[stored.len() - 1..], [8], "untagged");
    assert_eq!(stored.len(), record(1, 0, 0, b"", &[8]).len());
    assert_eq!(
        raw.info.get(&rtxn, "format_version").unwrap().unwrap(),
        1_u32.to_le_bytes()
    );
}

/// The stored `key_order` setting of a dict that `fill` wrote to.
fn stored_key_order(fill: &dyn Fn(&PersistDict<String, u32>)) -> Option<Vec<u8>> {
    let dir = common::tempdir();
    {
        let d = PersistDict::open(dir.path()).unwrap();
        fill(&d);
    }
    let raw = open_raw(dir.path());
    let rtxn = raw.env.read_txn().unwrap();
    raw.info
        .get(&rtxn, "key_order")
        .unwrap()
        .map(<[u8]>::to_vec)
}

#[test]
fn the_key_order_setting_is_stored_as_documented() {
    assert_eq!(stored_key_order(&|_| {}), Some(vec![1]), "a new dict");
    let in_key_order = |d: &PersistDict<String, u32>| {
        d.insert("a".into(), 1).unwrap();
        d.extend([("b".into(), 2), ("c".into(), 3)]).unwrap();
        d.remove("c").unwrap();
        d.insert("a".into(), 4).unwrap();
    };
    assert_eq!(
        stored_key_order(&in_key_order),
        Some(vec![1]),
        "keys inserted in key order, one removed, one overwritten"
    );
    let lower = |d: &PersistDict<String, u32>| {
        d.insert("b".into(), 1).unwrap();
        d.insert("a".into(), 2).unwrap();
    };
    assert_eq!(
        stored_key_order(&lower),
        Some(vec![0]),
        "a key that sorts lower"
    );
    let emptied = |d: &PersistDict<String, u32>| {
        lower(d);
        d.clear().unwrap();
    };
    assert_eq!(stored_key_order(&emptied), Some(vec![1]), "emptied");
}
