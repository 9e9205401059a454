//! Generated code names everything by absolute paths: user items named like prelude items
//! don't change what it means.

#![allow(dead_code, non_camel_case_types)]

mod shadowing {
    use ::std::collections::HashMap;

    use ::persistdict::{memoize, persistent};
    use serde::{Deserialize, Serialize};

    struct Result;
    struct Ok;
    struct Err;
    struct Some;
    struct None;
    struct Option;
    struct Vec;
    struct String;
    struct Box;
    struct Path;
    struct Fields;
    struct Memo;
    struct PersistDict;
    trait Default {}
    trait Clone {}
    trait FnMut {}
    trait AsRef {}
    trait Deref {}
    mod core {}
    mod std {}
    mod persistdict {}

    #[persistent(path = "unused")]
    #[derive(Serialize, Deserialize, ::core::default::Default)]
    pub(super) struct State {
        pub(super) count: u64,
        pub(super) name: ::std::string::String,
    }

    #[persistent(path = "unused")]
    pub(super) type Counts = HashMap<::std::string::String, u64>;

    #[memoize(path = "persistdict-tests/memo-hygiene")]
    pub(super) fn double(x: u64) -> ::core::result::Result<u64, ::std::string::String> {
        ::core::result::Result::Ok(x * 2)
    }

    #[memoize(path = "persistdict-tests/memo-hygiene")]
    pub(super) fn half(x: u64) -> ::core::option::Option<u64> {
        x.checked_div(2)
    }
}

#[test]
fn generated_code_works_among_items_named_like_prelude_items() {
    let dir = tempfile::tempdir().unwrap();
    let s = shadowing::State::open_at(dir.path().join("s")).unwrap();
    s.set_count(2).unwrap();
    s.modify(|st| st.name.push('x')).unwrap();
    assert_eq!(s.load().unwrap().count, 2);
    assert_eq!(s.name().unwrap(), "x");
    let c = shadowing::Counts::open_at(dir.path().join("c")).unwrap();
    c.insert("a".into(), 1).unwrap();
    assert_eq!(c.get("a").unwrap(), Some(1));
    assert_eq!(shadowing::double(4), Ok(8));
    assert_eq!(shadowing::half(4), Some(2));
}
