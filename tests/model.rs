//! Random operation sequences behave like a `HashMap` with insertion order.

mod common;

use persistdict::{Durability, PersistDict};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(String, u32),
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

fn open(dir: &std::path::Path) -> PersistDict<String, u32> {
    PersistDict::builder()
        .key_size_limit(6)
        .durability(Durability::Eventual)
        .open(dir)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_operations_match_an_ordered_map_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = common::tempdir();
        let mut d = open(dir.path());
        // The model: entries in insertion order.
        let mut model: Vec<(String, u32)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    d.insert(k.clone(), v).unwrap();
                    match model.iter_mut().find(|(mk, _)| *mk == k) {
                        Some(entry) => entry.1 = v,
                        None => model.push((k, v)),
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
                    let new = d.update(&k, |v| Some(v.map_or(0, |v| v.wrapping_add(1)))).unwrap();
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
        }
        let items: Vec<(String, u32)> = d.iter().map(Result::unwrap).collect();
        prop_assert_eq!(items, model);
    }
}
