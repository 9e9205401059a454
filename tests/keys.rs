//! Keys that can't be stored as they are: too long, empty, or colliding digests.

mod common;

use persistdict::PersistDict;

#[test]
fn thousands_of_colliding_keys_each_keep_their_own_value() {
    let dir = common::tempdir();
    // A 1-byte limit leaves 256 digests for 3,000 keys: every bucket holds ~12 colliding keys.
    let d: PersistDict<String, u32> = PersistDict::builder()
        .key_size_limit(1)
        .open(dir.path())
        .unwrap();
    d.extend((0..3_000).map(|i| (format!("key-{i}"), i)))
        .unwrap();
    assert_eq!(d.len().unwrap(), 3_000);
    for i in 0..3_000 {
        assert_eq!(d.get(&format!("key-{i}")).unwrap(), Some(i), "key-{i}");
    }
    // Removing every other key leaves the collision partners intact.
    for i in (0..3_000).step_by(2) {
        assert!(d.remove(&format!("key-{i}")).unwrap());
    }
    for i in 0..3_000 {
        let expected = (i % 2 == 1).then_some(i);
        assert_eq!(d.get(&format!("key-{i}")).unwrap(), expected, "key-{i}");
    }
    assert_eq!(d.len().unwrap(), 1_500);
    let in_order: Vec<String> = d.keys().map(Result::unwrap).take(3).collect();
    assert_eq!(in_order, ["key-1", "key-3", "key-5"]);
}

#[test]
fn over_long_keys_work_for_get_contains_remove_and_overwrite() {
    let dir = common::tempdir();
    let d: PersistDict<String, String> = PersistDict::open(dir.path()).unwrap();
    let long = "x".repeat(10_000);
    let longer = "x".repeat(10_001);
    d.insert(long.clone(), "long".into()).unwrap();
    assert_eq!(d.get(&long).unwrap().as_deref(), Some("long"));
    assert!(d.contains_key(&long).unwrap());
    assert_eq!(
        d.get(&longer).unwrap(),
        None,
        "a longer key sharing a prefix is another key"
    );
    d.insert(long.clone(), "again".into()).unwrap();
    assert_eq!(d.len().unwrap(), 1);
    assert_eq!(d.keys().next().unwrap().unwrap(), long);
    assert!(d.remove(&long).unwrap());
    assert!(!d.remove(&long).unwrap());
    assert!(d.is_empty().unwrap());
}

#[test]
fn a_key_exactly_at_the_limit_and_one_past_it_are_both_found() {
    let dir = common::tempdir();
    let d: PersistDict<Vec<u8>, u8> = PersistDict::builder()
        .key_size_limit(8)
        .open(dir.path())
        .unwrap();
    // postcard: one length byte, then the bytes.
    let at_limit = vec![7_u8; 7];
    let past_limit = vec![7_u8; 8];
    d.insert(at_limit.clone(), 1).unwrap();
    d.insert(past_limit.clone(), 2).unwrap();
    assert_eq!(d.get(&at_limit).unwrap(), Some(1));
    assert_eq!(d.get(&past_limit).unwrap(), Some(2));
}

#[test]
fn a_key_whose_encoding_is_empty_works() {
    let dir = common::tempdir();
    let d: PersistDict<(), String> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(d.get(&()).unwrap(), None);
    d.insert((), "unit".into()).unwrap();
    assert_eq!(d.get(&()).unwrap().as_deref(), Some("unit"));
    assert_eq!(d.keys().collect::<Result<Vec<()>, _>>().unwrap(), [()]);
    assert!(d.remove(&()).unwrap());
    assert!(d.is_empty().unwrap());
}
