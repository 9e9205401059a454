//! `#[persistent]` on structs and map types: typed accessors, defaults, schema changes,
//! atomic updates across processes.

mod common;

use std::collections::{BTreeMap, HashMap};

use persistdict::{Error, Json, PersistDict, persistent};
use serde::{Deserialize, Serialize};

#[persistent(path = "persistdict-tests/app-state", expire_days = 30)]
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
struct AppState {
    counter: u64,
    last_user: Option<String>,
    recent: Vec<String>,
}

#[test]
fn a_field_never_stored_reads_as_the_struct_default() {
    let dir = common::tempdir();
    let s = AppState::open_at(dir.path()).unwrap();
    assert_eq!(s.counter().unwrap(), 0);
    assert_eq!(s.last_user().unwrap(), None);
    assert_eq!(s.load().unwrap(), AppState::default());
}

#[test]
fn each_accessor_reads_what_its_setter_stored_after_reopening() {
    let dir = common::tempdir();
    {
        let s = AppState::open_at(dir.path()).unwrap();
        s.set_counter(3).unwrap();
        s.set_last_user(Some("ada".into())).unwrap();
        assert_eq!(s.update_counter(|c| *c += 1).unwrap(), 4);
    }
    let s = AppStateStore::open_at(dir.path()).unwrap();
    assert_eq!(s.counter().unwrap(), 4);
    assert_eq!(s.last_user().unwrap().as_deref(), Some("ada"));
    assert_eq!(s.recent().unwrap(), Vec::<String>::new());
}

#[test]
fn load_save_and_modify_cover_every_field() {
    let dir = common::tempdir();
    let s = AppState::open_at(dir.path()).unwrap();
    let state = AppState {
        counter: 7,
        last_user: Some("bob".into()),
        recent: vec!["a".into()],
    };
    s.save(&state).unwrap();
    assert_eq!(s.load().unwrap(), state);
    let pushed = s
        .modify(|st| {
            st.counter += 1;
            st.recent.push("b".into());
            st.recent.len()
        })
        .unwrap();
    assert_eq!(pushed, 2);
    assert_eq!(s.counter().unwrap(), 8);
    assert_eq!(s.recent().unwrap(), ["a", "b"]);
    assert_eq!(s.last_user().unwrap().as_deref(), Some("bob"));
}

#[test]
fn reset_makes_a_field_read_as_its_default_again() {
    let dir = common::tempdir();
    let s = AppState::open_at(dir.path()).unwrap();
    s.set_counter(9).unwrap();
    assert!(s.reset_counter().unwrap());
    assert_eq!(s.counter().unwrap(), 0);
    assert!(!s.reset_counter().unwrap());
}

#[test]
fn the_handle_is_cloneable_send_and_sync_and_clones_share_the_data() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<AppStateStore>();
    let dir = common::tempdir();
    let s = AppState::open_at(dir.path()).unwrap();
    let t = s.clone();
    std::thread::spawn(move || t.set_counter(5).unwrap())
        .join()
        .unwrap();
    assert_eq!(s.counter().unwrap(), 5);
}

#[test]
fn the_path_of_the_attribute_is_a_constant_of_the_handle() {
    assert_eq!(AppStateStore::PATH, "persistdict-tests/app-state");
}

#[persistent(path = "unused")]
#[derive(Serialize, Deserialize)]
struct WithDefaults {
    #[persistent(default = 8080)]
    port: u16,
    #[persistent(default = String::from("localhost"))]
    host: String,
}

#[test]
fn a_per_field_default_needs_no_default_impl() {
    let dir = common::tempdir();
    let s = WithDefaults::open_at(dir.path()).unwrap();
    assert_eq!(s.port().unwrap(), 8080);
    assert_eq!(s.host().unwrap(), "localhost");
    assert_eq!(s.update_port(|p| *p += 1).unwrap(), 8081);
    let loaded = s.load().unwrap();
    assert_eq!((loaded.port, loaded.host.as_str()), (8081, "localhost"));
}

mod v1 {
    use super::*;

    #[persistent(path = "unused")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Settings {
        pub(crate) theme: String,
        pub(crate) size: u64,
    }
}

mod v2 {
    use super::*;

    /// `size` removed, `volume` added.
    #[persistent(path = "unused")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Settings {
        pub(crate) theme: String,
        #[persistent(default = 11)]
        pub(crate) volume: u8,
    }
}

mod v3 {
    use super::*;

    /// `size` changed type.
    #[persistent(path = "unused")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Settings {
        pub(crate) size: String,
    }
}

#[test]
fn an_added_field_reads_as_its_default_and_a_removed_one_is_ignored() {
    let dir = common::tempdir();
    let old = v1::Settings::open_at(dir.path()).unwrap();
    old.save(&v1::Settings {
        theme: "dark".into(),
        size: 300,
    })
    .unwrap();
    drop(old);
    let new = v2::Settings::open_at(dir.path()).unwrap();
    let loaded = new.load().unwrap();
    assert_eq!((loaded.theme.as_str(), loaded.volume), ("dark", 11));
    new.set_volume(3).unwrap();
    drop(new);
    // The removed field's data is still there for the old version.
    let old = v1::Settings::open_at(dir.path()).unwrap();
    assert_eq!(old.size().unwrap(), 300);
}

#[test]
fn a_field_whose_type_changed_is_an_error_naming_it_until_reset() {
    let dir = common::tempdir();
    v1::Settings::open_at(dir.path())
        .unwrap()
        .set_size(300)
        .unwrap();
    let s = v3::Settings::open_at(dir.path()).unwrap();
    let err = s.size().unwrap_err();
    assert!(
        matches!(err, Error::Field { field: "size", .. }),
        "unexpected {err:?}"
    );
    assert!(err.to_string().contains("`size`"), "{err}");
    assert!(matches!(s.load(), Err(Error::Field { field: "size", .. })));
    assert!(matches!(
        s.update_size(|v| v.push('x')),
        Err(Error::Field { .. })
    ));
    assert!(s.reset_size().unwrap());
    assert_eq!(s.size().unwrap(), "");
    s.set_size("ok".into()).unwrap();
    assert_eq!(s.load().unwrap().size, "ok");
}

#[persistent(
    path = "unused",
    codec = "persistdict::Json",
    cache = 0,
    name = "json-state"
)]
#[derive(Serialize, Deserialize, Default)]
struct JsonState {
    #[persistent(rename = "hits")]
    counter: u64,
}

#[test]
fn fields_are_ordinary_entries_under_their_stored_names_in_the_chosen_codec() {
    let dir = common::tempdir();
    JsonState::open_at(dir.path())
        .unwrap()
        .set_counter(42)
        .unwrap();
    let raw: PersistDict<String, u64, Json> = PersistDict::builder()
        .value_codec(Json)
        .open(dir.path())
        .unwrap();
    assert_eq!(raw.get("hits").unwrap(), Some(42));
    assert_eq!(raw.keys().collect::<Result<Vec<_>, _>>().unwrap(), ["hits"]);
}

#[persistent(path = "unused", handle = "Tally")]
#[derive(Serialize, Deserialize, Default)]
struct Counters {
    a: u64,
    b: u64,
}

const ROUNDS: u64 = 500;

#[test]
fn updates_from_four_processes_are_atomic() {
    let dir = common::tempdir();
    let children: Vec<_> = (0..4)
        .map(|_| common::spawn_child("child_increments_a", dir.path(), &[]))
        .collect();
    for child in children {
        common::finish_child(child);
    }
    let tally: Tally = Counters::open_at(dir.path()).unwrap();
    assert_eq!(tally.a().unwrap(), 4 * ROUNDS);
}

#[test]
#[ignore = "child process of updates_from_four_processes_are_atomic"]
fn child_increments_a() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let tally = Counters::open_at(dir).unwrap();
    for _ in 0..ROUNDS {
        tally.update_a(|a| *a += 1).unwrap();
    }
}

#[test]
fn processes_setting_different_fields_never_overwrite_each_other() {
    let dir = common::tempdir();
    let children: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|field| {
            common::spawn_child(
                "child_sets_one_field",
                dir.path(),
                &[("FIELD", field.to_owned())],
            )
        })
        .collect();
    for child in children {
        common::finish_child(child);
    }
    let tally = Counters::open_at(dir.path()).unwrap();
    assert_eq!((tally.a().unwrap(), tally.b().unwrap()), (ROUNDS, ROUNDS));
}

#[test]
#[ignore = "child process of processes_setting_different_fields_never_overwrite_each_other"]
fn child_sets_one_field() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    let tally = Counters::open_at(dir).unwrap();
    let field = std::env::var("FIELD").unwrap();
    for i in 1..=ROUNDS {
        if field == "a" {
            tally.set_a(i).unwrap();
        } else {
            tally.set_b(i).unwrap();
        }
    }
}

#[persistent(path = "unused", expire_days = 7)]
type Embeddings = HashMap<String, Vec<f32>>;

#[persistent(path = "unused")]
type Ordered = BTreeMap<u32, String>;

/// Documentation stays on the generated type.
#[persistent(path = "unused", durability = "eventual")]
pub struct Wrapped(HashMap<String, u64>);

#[test]
fn a_map_type_is_a_named_persist_dict() {
    let dir = common::tempdir();
    let e = Embeddings::open_at(dir.path().join("e")).unwrap();
    e.insert("hello".into(), vec![0.5, 1.5]).unwrap();
    assert_eq!(e.get("hello").unwrap(), Some(vec![0.5, 1.5]));
    let e2 = Embeddings::open_at(dir.path().join("e")).unwrap();
    assert_eq!(e2.len().unwrap(), 1);

    let o = Ordered::open_at(dir.path().join("o")).unwrap();
    o.insert(2, "two".into()).unwrap();
    o.insert(1, "one".into()).unwrap();
    assert_eq!(o.keys().collect::<Result<Vec<_>, _>>().unwrap(), [2, 1]);

    let w = Wrapped::open_at(dir.path().join("w")).unwrap();
    w.update("n", |n| Some(n.unwrap_or(0) + 1)).unwrap();
    let dict: PersistDict<String, u64> = w.into_inner();
    assert_eq!(dict.get("n").unwrap(), Some(1));
}

#[test]
fn a_map_type_iterates_with_a_for_loop_as_the_dict_does() {
    let dir = common::tempdir();
    let o = Ordered::open_at(dir.path().join("o")).unwrap();
    o.insert(2, "two".into()).unwrap();
    o.insert(1, "one".into()).unwrap();
    let mut seen = Vec::new();
    for entry in &o {
        seen.push(entry.unwrap());
    }
    assert_eq!(seen, [(2, "two".to_string()), (1, "one".to_string())]);
}

#[persistent(path = "persistdict-tests/located-state")]
#[derive(Serialize, Deserialize, Default)]
struct Located {
    runs: u32,
}

/// Runs `child_counts_a_run_of_located` in `cwd` with `env`; returns the directory it opened
/// and the run count it stored.
fn run_located(cwd: &std::path::Path, env: &[(&str, String)]) -> (std::path::PathBuf, u32) {
    let [dir, runs] = common::child_fields(
        "child_counts_a_run_of_located",
        cwd,
        env,
        ["dir: ", "runs: "],
    );
    (dir.into(), runs.parse().unwrap())
}

#[test]
fn a_relative_path_is_under_the_platform_data_directory_from_any_working_directory() {
    let home = common::tempdir();
    let data = home.path().join("data");
    let env = [
        ("PERSISTDICT_DIR", String::new()),
        ("HOME", home.path().display().to_string()),
        ("XDG_DATA_HOME", data.display().to_string()),
    ];
    let (one, two) = (common::tempdir(), common::tempdir());
    let (first, runs) = run_located(one.path(), &env);
    let expected = data
        .join(env!("CARGO_PKG_NAME"))
        .join("persistdict-tests/located-state");
    assert_eq!(first, expected.canonicalize().unwrap());
    assert_eq!(runs, 1);
    let (second, runs) = run_located(two.path(), &env);
    assert_eq!(
        (second, runs),
        (first, 2),
        "the state moved with the working directory"
    );
}

#[test]
fn persistdict_dir_redirects_a_persistent_struct() {
    let base = common::tempdir();
    let env = [("PERSISTDICT_DIR", base.path().display().to_string())];
    let (dir, runs) = run_located(base.path(), &env);
    let expected = base
        .path()
        .join(env!("CARGO_PKG_NAME"))
        .join("persistdict-tests/located-state");
    assert_eq!((dir, runs), (expected.canonicalize().unwrap(), 1));
}

#[test]
#[ignore = "child process of the tests of where a persistent struct lives"]
fn child_counts_a_run_of_located() {
    let Some(dir) = common::child_dir() else {
        return;
    };
    // One thread runs in a child (`--test-threads=1`), so changing directory races nothing.
    std::env::set_current_dir(&dir).unwrap();
    let state = Located::open().unwrap();
    println!("runs: {}", state.update_runs(|r| *r += 1).unwrap());
    println!("dir: {}", state.path().display());
}

/// Not serializable: serde skips it, so `#[persistent]` doesn't store it.
#[derive(Default, Debug, PartialEq)]
struct Connection(u32);

fn seven() -> u32 {
    7
}

/// Stores a `u64` as decimal text (serde hands `with` functions a reference).
#[allow(clippy::trivially_copy_pass_by_ref)]
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[persistent(path = "persistdict-tests/serde-fields")]
#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Tuned {
    #[serde(skip)]
    connection: Connection,
    #[serde(rename = "speed")]
    velocity: u32,
    #[serde(default = "seven")]
    level: u32,
    #[serde(with = "as_text")]
    since: u64,
}

#[test]
fn a_field_serde_skips_is_not_stored_and_reads_as_its_default() {
    let dir = common::tempdir();
    let s = Tuned::open_at(dir.path()).unwrap();
    s.modify(|t| {
        t.connection = Connection(5);
        t.velocity = 3;
    })
    .unwrap();
    let loaded = s.load().unwrap();
    assert_eq!((loaded.connection, loaded.velocity), (Connection(0), 3));
    let raw: PersistDict<String, Vec<u8>> = PersistDict::open(dir.path()).unwrap();
    assert!(!raw.contains_key("connection").unwrap());
}

#[test]
fn serde_rename_names_the_stored_entry() {
    let dir = common::tempdir();
    let s = Tuned::open_at(dir.path()).unwrap();
    s.set_velocity(9).unwrap();
    drop(s);
    let raw: PersistDict<String, u32> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(raw.get("speed").unwrap(), Some(9));
    assert!(!raw.contains_key("velocity").unwrap());
}

#[test]
fn serde_default_is_the_value_of_a_field_never_stored() {
    let dir = common::tempdir();
    let s = Tuned::open_at(dir.path()).unwrap();
    assert_eq!(s.level().unwrap(), 7);
    assert_eq!(s.load().unwrap().level, 7);
    assert_eq!(s.update_level(|l| *l += 1).unwrap(), 8);
}

#[test]
fn serde_with_encodes_the_stored_entry() {
    let dir = common::tempdir();
    let s = Tuned::open_at(dir.path()).unwrap();
    s.set_since(1_700_000_000).unwrap();
    assert_eq!(s.since().unwrap(), 1_700_000_000);
    assert_eq!(s.update_since(|v| *v += 1).unwrap(), 1_700_000_001);
    s.save(&Tuned {
        since: 42,
        ..Tuned::default()
    })
    .unwrap();
    assert_eq!(s.load().unwrap().since, 42);
    drop(s);
    let raw: PersistDict<String, String> = PersistDict::open(dir.path()).unwrap();
    assert_eq!(raw.get("since").unwrap().as_deref(), Some("42"));
}

mod nested_v1 {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Window {
        pub(crate) width: u32,
    }

    #[persistdict::persistent(path = "persistdict-tests/nested", codec = "persistdict::Json")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Ui {
        pub(crate) window: Window,
    }

    #[persistdict::persistent(path = "persistdict-tests/nested-postcard")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct UiPostcard {
        pub(crate) window: Window,
    }
}

mod nested_v2 {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Window {
        pub(crate) width: u32,
        #[serde(default = "tall")]
        pub(crate) height: u32,
    }

    fn tall() -> u32 {
        600
    }

    #[persistdict::persistent(path = "persistdict-tests/nested", codec = "persistdict::Json")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Ui {
        pub(crate) window: Window,
    }

    #[persistdict::persistent(path = "persistdict-tests/nested-postcard")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct UiPostcard {
        pub(crate) window: Window,
    }
}

#[test]
fn a_field_added_to_a_nested_struct_reads_as_its_serde_default_under_json() {
    let dir = common::tempdir();
    let old = nested_v1::Ui::open_at(dir.path()).unwrap();
    old.set_window(nested_v1::Window { width: 800 }).unwrap();
    drop(old);
    let new = nested_v2::Ui::open_at(dir.path()).unwrap();
    let window = new.window().unwrap();
    assert_eq!((window.width, window.height), (800, 600));
}

#[test]
fn a_field_added_to_a_nested_struct_reads_as_its_serde_default_under_postcard() {
    let dir = common::tempdir();
    let old = nested_v1::UiPostcard::open_at(dir.path()).unwrap();
    old.set_window(nested_v1::Window { width: 800 }).unwrap();
    drop(old);
    let new = nested_v2::UiPostcard::open_at(dir.path()).unwrap();
    let window = new.window().unwrap();
    assert_eq!((window.width, window.height), (800, 600));
    // What the new version stores, the old one can't read: an error, not a guess.
    new.set_window(nested_v2::Window {
        width: 1,
        height: 2,
    })
    .unwrap();
    drop(new);
    let old = nested_v1::UiPostcard::open_at(dir.path()).unwrap();
    assert!(old.window().is_ok(), "a removed field is skipped by name");
}

mod nested_v3 {
    use serde::{Deserialize, Serialize};

    /// `Window` with a field added without a default.
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct Window {
        pub(crate) width: u32,
        pub(crate) depth: u32,
    }

    #[persistdict::persistent(path = "persistdict-tests/nested-postcard")]
    #[derive(Serialize, Deserialize, Default)]
    pub(crate) struct UiPostcard {
        pub(crate) window: Window,
    }
}

#[test]
fn a_field_added_to_a_nested_struct_without_a_default_is_a_field_error_never_a_guess() {
    let dir = common::tempdir();
    let old = nested_v1::UiPostcard::open_at(dir.path()).unwrap();
    old.set_window(nested_v1::Window { width: 800 }).unwrap();
    drop(old);
    let new = nested_v3::UiPostcard::open_at(dir.path()).unwrap();
    let err = new.window().err().expect("an error");
    assert!(
        matches!(
            &err,
            Error::Field {
                field: "window",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("depth: u32"), "{err}");
}
