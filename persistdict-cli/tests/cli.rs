//! The `persistdict` binary, run as a user runs it, on dicts the library makes here.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use persistdict::inspect::Inspector;
use persistdict::{Json, PersistDict};
use serde::{Deserialize, Serialize};

fn persistdict(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_persistdict"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs and expects exit code `code`.
fn run(code: i32, args: &[&str]) -> String {
    let out = persistdict(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "persistdict {args:?}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Doc {
    title: String,
    score: f32,
    tags: Vec<String>,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Note,
    Link { url: String },
}

fn doc(i: u32) -> Doc {
    Doc {
        title: format!("doc {i}"),
        score: f32::from(u16::try_from(i).unwrap()) / 10.0,
        tags: vec!["a".into(); (i % 3) as usize],
        kind: if i.is_multiple_of(2) {
            Kind::Note
        } else {
            Kind::Link {
                url: format!("https://example.com/{i}"),
            }
        },
    }
}

fn docs(dir: &Path, n: u32) {
    let d: PersistDict<String, Doc> = PersistDict::builder().expire_days(30).open(dir).unwrap();
    for i in 0..n {
        d.insert(format!("key{i}"), doc(i)).unwrap();
    }
}

/// Every entry of the dict in `dir` as stored, in insertion order.
fn stored(dir: &Path) -> Vec<Vec<u8>> {
    let dict = Inspector::open(dir).unwrap();
    dict.entries()
        .map(|e| {
            let e = e.unwrap();
            let mut line = e.key.clone();
            line.extend_from_slice(&e.value);
            line.extend_from_slice(&e.tag.unwrap_or_default());
            line.extend_from_slice(&format!("{:?}{:?}", e.created, e.accessed).into_bytes());
            line
        })
        .collect()
}

#[test]
fn stats_ls_get_meta_and_rm_show_a_dict_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("docs");
    docs(&dir, 5);
    let d = dir.to_str().unwrap();

    let stats = run(0, &["stats", d]);
    assert!(stats.contains("entries      5"), "{stats}");
    assert!(
        stats.contains("key codec postcard, value codec postcard"),
        "{stats}"
    );
    assert!(stats.contains("after 30days"), "{stats}");
    assert!(stats.contains("key type     string"), "{stats}");
    assert!(stats.contains("Doc"), "{stats}");
    let json: serde_json::Value = serde_json::from_str(&run(0, &["stats", d, "--json"])).unwrap();
    assert_eq!(json["entries"], 5);
    assert_eq!(json["expire_after_ms"], 30 * 86_400_000_u64);

    let ls = run(0, &["ls", d]);
    let keys: Vec<&str> = ls.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(keys, ["key0", "key1", "key2", "key3", "key4"]);
    let ls = run(0, &["ls", d, "--json", "--prefix", "key3"]);
    let line: serde_json::Value = serde_json::from_str(ls.trim()).unwrap();
    assert_eq!(line["key"], "key3");
    assert!(line["created_ms"].as_u64().unwrap() > 0);
    assert_eq!(run(0, &["ls", d, "--idle", "1d"]), "");

    let value: serde_json::Value =
        serde_json::from_str(&run(0, &["get", d, "key1", "--json"])).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"title": "doc 1", "score": 0.1, "tags": ["a"], "kind": {"Link": {"url": "https://example.com/1"}}})
    );
    let meta = run(0, &["meta", d, "key2"]);
    assert!(
        meta.contains("created") && meta.contains("type      Doc"),
        "{meta}"
    );

    run(0, &["rm", d, "key2"]);
    let out = persistdict(&["get", d, "key2"]);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains(d) && message.contains("no entry under key key2"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    let d: PersistDict<String, Doc> = PersistDict::open(&dir).unwrap();
    assert_eq!(d.len().unwrap(), 4);
    assert_eq!(d.get("key3").unwrap(), Some(doc(3)));
}

#[test]
fn commands_that_read_leave_the_files_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("docs");
    docs(&dir, 50);
    let d = dir.to_str().unwrap();
    let before = std::fs::read(dir.join("data.mdb")).unwrap();
    run(0, &["stats", d]);
    run(0, &["ls", d]);
    run(0, &["get", d, "key7"]);
    run(0, &["meta", d, "key7"]);
    run(0, &["check", d]);
    run(0, &["export", d]);
    run(0, &["expire", d, "--idle", "0s", "--dry-run"]);
    assert!(std::fs::read(dir.join("data.mdb")).unwrap() == before);
}

#[test]
fn a_missing_dict_is_an_error_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nothing");
    for cmd in ["stats", "ls", "check", "export"] {
        let out = persistdict(&[cmd, dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        assert!(stderr(&out).contains("no dict"), "{}", stderr(&out));
    }
    let out = persistdict(&["rm", dir.to_str().unwrap(), "k"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.exists());
}

#[test]
fn usage_errors_exit_with_2_and_every_command_has_an_example() {
    assert_eq!(persistdict(&["stats"]).status.code(), Some(2));
    assert_eq!(persistdict(&["frobnicate", "x"]).status.code(), Some(2));
    for cmd in [
        "stats", "ls", "get", "meta", "rm", "check", "expire", "compact", "export", "import",
        "memo",
    ] {
        let help = run(0, &[cmd, "--help"]);
        assert!(help.contains("Example: persistdict"), "{cmd}: {help}");
    }
    let help = run(0, &["--help"]);
    assert!(help.contains("Exit codes"), "{help}");
}

#[test]
fn hashed_keys_and_colliding_digests_are_listed_and_found() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("hashed");
    // A limit of one byte stores every key of two bytes or more under a one-byte digest:
    // 300 keys share at most 256 buckets.
    let d: PersistDict<String, u64> = PersistDict::builder().key_size_limit(1).open(&dir).unwrap();
    for i in 0..300_u64 {
        d.insert(format!("k{i}"), i).unwrap();
    }
    drop(d);
    let p = dir.to_str().unwrap();
    let stats: serde_json::Value = serde_json::from_str(&run(0, &["stats", p, "--json"])).unwrap();
    assert_eq!(stats["hashed_keys"], 300);
    assert!(stats["shared_buckets"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(run(0, &["get", p, "k299"]).trim(), "299");
    let meta = run(0, &["meta", p, "k12"]);
    assert!(meta.contains("under a digest"), "{meta}");
    assert_eq!(run(0, &["ls", p]).lines().count(), 300);
    run(0, &["rm", p, "k12"]);
    run(1, &["get", p, "k12"]);
    assert_eq!(run(0, &["get", p, "k13"]).trim(), "13");
}

/// Overwrites the record of `key` (stored raw) with bytes no record has.
fn damage(dir: &Path, key: &[u8]) {
    use heed::types::Bytes;
    // SAFETY: no other handle of this process has the dict open.
    let env = unsafe { heed::EnvOpenOptions::new().max_dbs(8).open(dir).unwrap() };
    let wtxn = env.write_txn().unwrap();
    let entries = env
        .create_databases_and_commit(wtxn, |o, w| {
            o.create_database::<Bytes, Bytes>(w, Some("entries"))
                .map(heed::CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let mut wtxn = env.write_txn().unwrap();
    entries.put(&mut wtxn, key, &[9, 9, 9]).unwrap();
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
}

#[test]
fn check_finds_a_damaged_record_and_repair_quarantines_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("damaged");
    docs(&dir, 10);
    damage(&dir, b"\x04key4");
    let d = dir.to_str().unwrap();
    let report = run(1, &["check", d]);
    assert!(
        report.contains("1 unreadable (would be quarantined)"),
        "{report}"
    );
    assert!(report.contains("key4"), "{report}");
    // Listing still works, and says what it could not read.
    let out = persistdict(&["ls", d]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 9);
    run(1, &["check", d, "--repair"]);
    let report = run(0, &["check", d]);
    assert!(report.contains("0 unreadable"), "{report}");
    let stats: serde_json::Value = serde_json::from_str(&run(0, &["stats", d, "--json"])).unwrap();
    assert_eq!(stats["quarantined"], 1);
    assert_eq!(stats["entries"], 9);
}

#[persistdict::memoize(path = "cli-tests/memo")]
fn square(x: u64) -> u64 {
    x * x
}

#[persistdict::memoize(path = "cli-tests/memo", version = 2)]
fn greet(name: &str) -> String {
    format!("hello {name}")
}

#[test]
fn memo_lists_each_function_and_clears_one() {
    for i in 0..5 {
        square(i);
    }
    greet("ada");
    greet("bob");
    square_memo().dict().unwrap().flush().unwrap();
    let dir = square_memo().dict().unwrap().path().to_path_buf();
    let d = dir.to_str().unwrap();
    let listing = run(0, &["memo", d]);
    assert!(listing.contains("cli::square (version 0"), "{listing}");
    assert!(listing.contains("cli::greet (version 2"), "{listing}");
    let json: Vec<serde_json::Value> = run(0, &["memo", d, "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let entries = |f: &str| json.iter().find(|j| j["function"] == f).unwrap()["entries"].clone();
    assert_eq!(entries("cli::square"), 5);
    assert_eq!(entries("cli::greet"), 2);
    let ls = run(0, &["ls", d]);
    assert!(ls.contains("cli::greet#2 args 0x"), "{ls}");

    // Exported and imported like any dict, functions included.
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("memo.jsonl");
    run(0, &["export", d, "-o", export.to_str().unwrap()]);
    let copy = tmp.path().join("copy");
    run(
        0,
        &["import", copy.to_str().unwrap(), export.to_str().unwrap()],
    );
    assert_eq!(stored(&copy), stored(&dir));
    assert!(run(0, &["memo", copy.to_str().unwrap()]).contains("cli::greet"));

    let cleared = run(0, &["memo", d, "--clear", "cli::greet"]);
    assert!(cleared.contains("removed 2 results"), "{cleared}");
    // Another process removed them: this process's calls compute again, and square's stay.
    assert_eq!(square_memo().dict().unwrap().len().unwrap(), 5);
    run(1, &["memo", d, "--clear", "cli::nothing"]);
}

#[test]
fn export_then_import_reproduces_the_dict_entry_by_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("docs");
    docs(&dir, 1_200);
    {
        // A key of another type than the rest, and a key stored under a digest.
        let d: PersistDict<String, Doc> = PersistDict::open(&dir).unwrap();
        d.insert("x".repeat(600), doc(9)).unwrap();
        d.init_once([]).unwrap();
    }
    let d = dir.to_str().unwrap();
    let export = tmp.path().join("docs.jsonl");
    run(0, &["export", d, "--output", export.to_str().unwrap()]);
    let text = std::fs::read_to_string(&export).unwrap();
    assert_eq!(text.lines().count(), 1 + 1_201);
    let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(second["key"], "key0");
    assert_eq!(second["value"]["title"], "doc 0");

    let copy = tmp.path().join("copy");
    let out = run(
        0,
        &["import", copy.to_str().unwrap(), export.to_str().unwrap()],
    );
    assert!(out.contains("imported 1201 entries"), "{out}");
    assert_eq!(stored(&copy), stored(&dir));
    let copied = Inspector::open(&copy).unwrap();
    assert!(copied.settings().initialized);
    drop(copied);
    // The program reads the copy as its own.
    let d: PersistDict<String, Doc> = PersistDict::builder().expire_days(30).open(&copy).unwrap();
    assert_eq!(d.get("key77").unwrap(), Some(doc(77)));

    // A JSON-codec dict: values exported as the JSON they are.
    let json_dir = tmp.path().join("json");
    let j: PersistDict<String, Doc, Json> = PersistDict::builder()
        .value_codec(Json)
        .open(&json_dir)
        .unwrap();
    j.insert("a".into(), doc(1)).unwrap();
    drop(j);
    let exported = run(0, &["export", json_dir.to_str().unwrap()]);
    assert!(
        exported.contains(r#""value":{"title":"doc 1""#),
        "{exported}"
    );
    let json_copy = tmp.path().join("json-copy");
    let mut child = Command::new(env!("CARGO_BIN_EXE_persistdict"))
        .args(["import", json_copy.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), exported.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(stored(&json_copy), stored(&json_dir));

    // A bad line stops the import with its number; nothing after it is imported.
    let bad = tmp.path().join("bad.jsonl");
    let mut lines: Vec<&str> = text.lines().take(4).collect();
    lines.insert(2, "{not json");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = persistdict(&[
        "import",
        tmp.path().join("bad").to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 3"), "{}", stderr(&out));
}

#[test]
fn compact_shrinks_a_dict_with_freed_pages_and_keeps_its_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big");
    {
        let d: PersistDict<u64, Vec<u8>> = PersistDict::open(&dir).unwrap();
        d.extend((0..4_000_u64).map(|i| (i, vec![7; 1024])))
            .unwrap();
        d.retain(|k, _| k % 40 == 0).unwrap();
    }
    let content = stored(&dir);
    let before = std::fs::metadata(dir.join("data.mdb")).unwrap().len();
    let out = run(0, &["compact", dir.to_str().unwrap()]);
    assert!(out.contains("compacted"), "{out}");
    let after = std::fs::metadata(dir.join("data.mdb")).unwrap().len();
    assert!(after * 4 < before, "{before} -> {after}");
    assert_eq!(stored(&dir), content);
    let d: PersistDict<u64, Vec<u8>> = PersistDict::open(&dir).unwrap();
    assert_eq!(d.len().unwrap(), 100);
    d.insert(1, vec![1]).unwrap();
    assert_eq!(d.get(&40).unwrap(), Some(vec![7; 1024]));
}

#[test]
fn compact_is_refused_while_another_process_has_the_dict_open_and_others_work() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("open");
    let d: PersistDict<String, u32> = PersistDict::open(&dir).unwrap();
    d.insert("a".into(), 1).unwrap();
    let p = dir.to_str().unwrap();
    let before = std::fs::read(dir.join("data.mdb")).unwrap();
    let out = persistdict(&["compact", p]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("open in another process"),
        "{}",
        stderr(&out)
    );
    assert!(std::fs::read(dir.join("data.mdb")).unwrap() == before);
    assert_eq!(run(0, &["get", p, "a"]).trim(), "1");
    run(0, &["rm", p, "a"]);
    // The removal by the other process is seen here.
    assert_eq!(d.get("a").unwrap(), None);
    d.insert("b".into(), 2).unwrap();
    assert!(run(0, &["ls", p]).starts_with("b\t"));
}

#[test]
fn expire_sweeps_with_the_recorded_expiry_or_a_given_age() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("exp");
    docs(&dir, 20);
    let d = dir.to_str().unwrap();
    // Nothing is 30 days old.
    assert!(run(0, &["expire", d]).contains("removed 0 entries"));
    std::thread::sleep(Duration::from_millis(20));
    let out = run(0, &["expire", d, "--idle", "10ms", "--dry-run"]);
    assert!(out.contains("20 entries"), "{out}");
    let out = run(0, &["expire", d, "--idle", "10ms"]);
    assert!(out.contains("removed 20 entries"), "{out}");
    let never = tmp.path().join("never");
    let n: PersistDict<String, u32> = PersistDict::open(&never).unwrap();
    n.insert("a".into(), 1).unwrap();
    drop(n);
    assert!(run(0, &["expire", never.to_str().unwrap()]).contains("never expire"));
}

#[test]
fn keys_of_other_types_are_given_as_json_or_hex() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tuples");
    let d: PersistDict<(u32, String), i64> = PersistDict::open(&dir).unwrap();
    d.insert((7, "beta".into()), -5).unwrap();
    drop(d);
    let p = dir.to_str().unwrap();
    assert_eq!(
        run(0, &["ls", p]).split('\t').next().unwrap(),
        r#"[7,"beta"]"#
    );
    assert_eq!(run(0, &["get", p, r#"[7, "beta"]"#]).trim(), "-5");
    let key = postcard_key();
    assert_eq!(run(0, &["get", p, &key, "--hex"]).trim(), "-5");
    let out = persistdict(&["get", p, "seven"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--hex"), "{}", stderr(&out));
}

/// `(7u32, "beta")` as postcard writes it, in hex.
fn postcard_key() -> String {
    "0704626574 61".replace(' ', "")
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    use std::io::{BufRead, BufReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("many");
    let d: PersistDict<u64, u64> = PersistDict::open(&dir).unwrap();
    d.extend((0..20_000_u64).map(|i| (i, i))).unwrap();
    drop(d);
    // As `persistdict ls DIR | head -1` does.
    let mut child = Command::new(env!("CARGO_BIN_EXE_persistdict"))
        .args(["ls", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("0\t"), "{first}");
    let out = child.wait_with_output().unwrap();
    let message = stderr(&out);
    assert!(!message.contains("panicked"), "{message}");
    assert_ne!(out.status.code(), Some(101), "{message}");
}
