//! The memory map grows by itself when it fills up.

mod common;

use persistdict::{Durability, PersistDict};

/// A dict with a 1 MiB map, which the tests overfill.
fn small_map(dir: impl AsRef<std::path::Path>) -> PersistDict<u32, Vec<u8>> {
    PersistDict::builder()
        .map_size(1 << 20)
        .durability(Durability::Eventual)
        .open(dir)
        .unwrap()
}

#[test]
fn a_one_mebibyte_map_takes_two_hundred_mebibytes() {
    let dir = common::tempdir();
    let d: PersistDict<u32, Vec<u8>> = small_map(dir.path());
    let value = |i: u32| vec![(i % 251) as u8; 1 << 20];
    // Single inserts (MapFull at put) and a multi-entry transaction (MapFull mid-transaction).
    for i in 0..150 {
        d.insert(i, value(i)).unwrap();
    }
    d.extend((150..200).map(|i| (i, value(i)))).unwrap();
    assert_eq!(d.len().unwrap(), 200);
    for i in [0, 99, 150, 199] {
        assert_eq!(d.get(&i).unwrap(), Some(value(i)), "entry {i}");
    }
    let file = std::fs::metadata(dir.path().join("data.mdb"))
        .unwrap()
        .len();
    println!(
        "200 MiB written through a 1 MiB map; data file is {} MiB",
        file >> 20
    );
    assert!(file >= 200 << 20);
}

#[test]
fn a_map_grown_by_another_handle_is_adopted_after_reopen() {
    let dir = common::tempdir();
    {
        let d: PersistDict<u32, Vec<u8>> = small_map(dir.path());
        d.extend((0..8).map(|i| (i, vec![1; 1 << 20]))).unwrap();
    }
    // Reopening with a map smaller than the file works: LMDB adopts the file's size.
    let d: PersistDict<u32, Vec<u8>> = PersistDict::builder()
        .map_size(1 << 20)
        .open(dir.path())
        .unwrap();
    assert_eq!(d.len().unwrap(), 8);
    d.insert(9, vec![2; 1 << 20]).unwrap();
}

#[test]
fn a_map_grown_by_another_process_is_adopted_by_an_open_handle() {
    let dir = common::tempdir();
    let d: PersistDict<u32, Vec<u8>> = small_map(dir.path());
    d.insert(0, vec![0; 16]).unwrap();
    common::finish_child(common::spawn_child("child_fills_the_map", dir.path(), &[]));
    // Both reading and writing need the larger map now.
    assert_eq!(d.get(&7).unwrap(), Some(vec![7; 1 << 20]));
    d.insert(100, vec![1; 1 << 20]).unwrap();
    assert_eq!(d.len().unwrap(), 10);
}

#[test]
#[ignore = "child process of a_map_grown_by_another_process_is_adopted_by_an_open_handle"]
fn child_fills_the_map() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let d: PersistDict<u32, Vec<u8>> = small_map(dir);
    for i in 1..9 {
        d.insert(i, vec![i as u8; 1 << 20]).unwrap();
    }
    d.flush().unwrap();
}

#[test]
fn a_process_opens_a_thousand_dicts_at_once_with_the_default_map_size() {
    let dir = common::tempdir();
    let start = std::time::Instant::now();
    let dicts: Vec<PersistDict<u32, u32>> = (0..1_000)
        .map(|i| {
            PersistDict::builder()
                .durability(Durability::Eventual)
                .background(persistdict::Background::Disabled)
                .open(dir.path().join(format!("d{i}")))
                .unwrap_or_else(|e| panic!("dict {i} of 1000: {e}"))
        })
        .collect();
    for (i, d) in dicts.iter().enumerate() {
        d.insert(7, i as u32).unwrap();
    }
    assert!(
        dicts
            .iter()
            .enumerate()
            .all(|(i, d)| d.get(&7).unwrap() == Some(i as u32))
    );
    println!("1000 dicts open at once in {:.2?}", start.elapsed());
}
