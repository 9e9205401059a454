//! Random operation sequences behave like a `HashMap` with insertion order.

mod common;

use persistdict::{Durability, PersistDict};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u32),
    /// Inserts keys that sort after every key inserted so far, this many in one transaction.
    InsertNext(u8),
    Remove(String),
    Get(String),
    Update(String),
    Clear,
    Reopen,
}

fn key() -> impl Strategy<Value = String> {
    // Short keys are stored raw, long ones hashed into shared buckets (limit 6).
    prop_oneof![
        (0_u8..12).prop_map(|i| format!("k{i}")),
        (0_u8..12).prop_map(|i| format!("long-key-{i}")),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => key().prop_map(Op::Remove),
        3 => key().prop_map(Op::Get),
        2 => key().prop_map(Op::Update),
        1 => Just(Op::Clear),
        1 => Just(Op::Reopen),
    ]
}

/// Mostly keys that arrive in key order, with now and then one that sorts lower.
fn mostly_ordered_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1_u8..4).prop_map(Op::InsertNext),
        1 => ((0_u8..12).prop_map(|i| format!("k{i}")), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0_u8..12).prop_map(|i| Op::Remove(format!("n{i:03}"))),
        2 => (0_u8..12).prop_map(|i| Op::Get(format!("n{i:03}"))),
        1 => (0_u8..12).prop_map(|i| Op::Update(format!("n{i:03}"))),
        1 => Just(Op::Clear),
        1 => Just(Op::Reopen),
    ]
}

fn open(dir: &std::path::Path) -> PersistDict<String, u32> {
    PersistDict::builder()
        .key_size_limit(6)
        .durability(Durability::Eventual)
        .open(dir)
        .unwrap()
}

/// Inserts into the model: an existing key keeps its place.
fn insert(model: &mut Vec<(String, u32)>, k: String, v: u32) {
    match model.iter_mut().find(|(mk, _)| *mk == k) {
        Some(entry) => entry.1 = v,
        None => model.push((k, v)),
    }
}

/// Runs `ops` on a fresh dict and on the model, entries in insertion order, comparing them
/// after every step, and the whole walk after every step that can change it.
fn matches_the_model(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = common::tempdir();
    let mut d = open(dir.path());
    let mut model: Vec<(String, u32)> = Vec::new();
    // The next key of `InsertNext`, above every one inserted so far.
    let mut next = 0_u32;
    for op in ops {
        let changes = !matches!(op, Op::Get(_));
        match op {
            Op::Insert(k, v) => {
                d.insert(k.clone(), v).unwrap();
                insert(&mut model, k, v);
            }
            Op::InsertNext(n) => {
                let batch: Vec<(String, u32)> = (next..next + u32::from(n))
                    .map(|i| (format!("n{i:03}"), i))
                    .collect();
                next += u32::from(n);
                d.extend(batch.clone()).unwrap();
                for (k, v) in batch {
                    insert(&mut model, k, v);
                }
            }
            Op::Remove(k) => {
                let was = model.iter().position(|(mk, _)| *mk == k);
                prop_assert_eq!(d.remove(&k).unwrap(), was.is_some());
                if let Some(i) = was {
                    model.remove(i);
                }
            }
            Op::Get(k) => {
                let expected = model.iter().find(|(mk, _)| *mk == k).map(|e| e.1);
                prop_assert_eq!(d.get(&k).unwrap(), expected);
            }
            Op::Update(k) => {
                let new = d
                    .update(&k, |v| Some(v.map_or(0, |v| v.wrapping_add(1))))
                    .unwrap();
                match model.iter_mut().find(|(mk, _)| *mk == k) {
                    Some(entry) => entry.1 = entry.1.wrapping_add(1),
                    None => model.push((k.clone(), 0)),
                }
                prop_assert_eq!(new, model.iter().find(|(mk, _)| *mk == k).map(|e| e.1));
            }
            Op::Clear => {
                d.clear().unwrap();
                model.clear();
            }
            Op::Reopen => {
                drop(d);
                d = open(dir.path());
            }
        }
        prop_assert_eq!(d.len().unwrap(), model.len() as u64);
        if changes {
            let items: Vec<(String, u32)> = d.iter().map(Result::unwrap).collect();
            prop_assert_eq!(&items, &model);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_operations_match_an_ordered_map_model(ops in proptest::collection::vec(op(), 1..60)) {
        matches_the_model(ops)?;
    }

    #[test]
    fn operations_on_keys_that_mostly_arrive_in_key_order_match_the_model(
        ops in proptest::collection::vec(mostly_ordered_op(), 1..60)
    ) {
        matches_the_model(ops)?;
    }
}
