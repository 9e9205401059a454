//! The commands, each over an [`Inspector`].

use std::fmt::Display;
use std::path::Path;
use std::time::{Duration, SystemTime};

use persistdict::inspect::{self, Entry, Expiry, Inspector};
use serde_json::{Value, json};

use crate::view::{Shown, View, hex};
use crate::{Command, Failure, Outcome, ms, progress, size, time, transfer};

/// Runs `command`.
pub(crate) fn run(command: Command) -> Result<Outcome, Failure> {
    match command {
        Command::Stats { dir, json } => stats(&dir, json),
        Command::Ls {
            dir,
            prefix,
            idle,
            older,
            limit,
            json,
        } => ls(
            &dir,
            &Filter {
                prefix,
                idle,
                older,
                limit,
            },
            json,
        ),
        Command::Get { at, json } => get(&at.dir, &at.key, at.hex, json),
        Command::Meta { at, json } => meta(&at.dir, &at.key, at.hex, json),
        Command::Rm { at } => rm(&at.dir, &at.key, at.hex),
        Command::Check { dir, repair, json } => check(&dir, repair, json),
        Command::Expire { dir, idle, dry_run } => expire(&dir, idle, dry_run),
        Command::Compact { dir } => compact(&dir),
        Command::Export { dir, output } => transfer::export(&dir, output.as_deref()),
        Command::Import { dir, input } => transfer::import(&dir, input.as_deref()),
        Command::Memo { dir, clear, json } => memo(&dir, clear.as_deref(), json),
    }
}

/// `error` as one line that names `dir`.
pub(crate) fn failed(dir: &Path, error: impl Display) -> Failure {
    let message = error.to_string();
    let shown = dir.display().to_string();
    if message.contains(&shown) {
        message
    } else {
        format!("{shown}: {message}")
    }
}

pub(crate) fn open(dir: &Path) -> Result<Inspector, Failure> {
    Inspector::open(dir).map_err(|e| failed(dir, e))
}

pub(crate) fn open_writable(dir: &Path) -> Result<Inspector, Failure> {
    Inspector::open_writable(dir).map_err(|e| failed(dir, e))
}

/// How long ago `t` was (zero for a time ahead of the clock).
fn age(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

fn print_json(value: &Value) {
    println!("{value}");
}

/// The oldest and newest of some times.
#[derive(Default)]
struct Span(Option<(SystemTime, SystemTime)>);

impl Span {
    fn add(&mut self, t: SystemTime) {
        self.0 = Some(match self.0 {
            None => (t, t),
            Some((lo, hi)) => (lo.min(t), hi.max(t)),
        });
    }

    fn text(&self) -> String {
        self.0.map_or_else(
            || "none".to_owned(),
            |(lo, hi)| format!("oldest {}, newest {}", time(lo), time(hi)),
        )
    }

    fn json(&self) -> Value {
        self.0.map_or(
            Value::Null,
            |(lo, hi)| json!({ "oldest_ms": ms(lo), "newest_ms": ms(hi) }),
        )
    }
}

fn expiry_text(expiry: Expiry) -> String {
    match expiry {
        Expiry::After(d) => format!(
            "after {} without access (as last opened for writing)",
            humantime::format_duration(d)
        ),
        Expiry::Never => "never".to_owned(),
        _ => "not recorded".to_owned(),
    }
}

/// The expiry in milliseconds for scripts: 0 for never, `null` when not recorded.
pub(crate) fn expiry_ms(expiry: Expiry) -> Value {
    match expiry {
        Expiry::After(d) => json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        Expiry::Never => json!(0),
        _ => Value::Null,
    }
}

fn stats(dir: &Path, as_json: bool) -> Result<Outcome, Failure> {
    let dict = open(dir)?;
    let storage = dict.storage().map_err(|e| failed(dir, e))?;
    let (mut accessed, mut created, mut unreadable) = (Span::default(), Span::default(), 0_u64);
    let bar = progress(Some(storage.entries), "reading times");
    for entry in dict.entries() {
        match entry {
            Ok(e) => {
                accessed.add(e.accessed);
                created.add(e.created);
            }
            Err(_) => unreadable += 1,
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let s = dict.settings();
    let key_types: Vec<String> = dict.key_types().iter().map(ToString::to_string).collect();
    let mut value_types: Vec<String> = dict
        .value_types()
        .values()
        .map(ToString::to_string)
        .collect();
    value_types.sort();
    let free = storage.file_bytes.saturating_sub(storage.used_bytes);
    if as_json {
        print_json(&json!({
            "path": dict.path(),
            "entries": storage.entries,
            "unreadable_entries": unreadable,
            "disk_bytes": storage.disk_bytes,
            "file_bytes": storage.file_bytes,
            "used_bytes": storage.used_bytes,
            "free_bytes": free,
            "format_version": s.format_version,
            "key_codec": s.key_codec,
            "value_codec": s.value_codec,
            "key_size_limit": s.key_size_limit,
            "expire_after_ms": expiry_ms(s.expiry),
            "initialized": s.initialized,
            "key_types": key_types,
            "value_types": value_types,
            "accessed": accessed.json(),
            "created": created.json(),
            "hashed_keys": storage.hashed_keys,
            "buckets": storage.buckets,
            "shared_buckets": storage.shared_buckets,
            "quarantined": storage.quarantined,
            "readers": storage.readers,
            "max_readers": storage.max_readers,
            "memo_functions": dict.memo_functions().len(),
        }));
        return Ok(Outcome::Fine);
    }
    println!("dict         {}", dict.path().display());
    println!("entries      {}", storage.entries);
    if unreadable > 0 {
        println!("unreadable   {unreadable} entries (run `check`)");
    }
    println!(
        "size         {} on disk; the file holds {} of data and {} of free pages{}",
        size(storage.disk_bytes),
        size(storage.used_bytes),
        size(free),
        if free > storage.used_bytes {
            " (`compact` returns them)"
        } else {
            ""
        }
    );
    println!(
        "format       {}; key codec {}, value codec {}, key size limit {}",
        s.format_version, s.key_codec, s.value_codec, s.key_size_limit
    );
    println!("expiry       {}", expiry_text(s.expiry));
    println!(
        "init_once    {}",
        if s.initialized { "ran" } else { "not run" }
    );
    println!("key type     {}", list_or(&key_types, "not recorded"));
    println!("value types  {}", list_or(&value_types, "not recorded"));
    println!("accessed     {}", accessed.text());
    println!("created      {}", created.text());
    println!(
        "hashed keys  {} in {} buckets, {} shared by keys whose digests collide",
        storage.hashed_keys, storage.buckets, storage.shared_buckets
    );
    println!("quarantined  {}", storage.quarantined);
    println!(
        "readers      {} of {} reader slots taken since the lock file was set up",
        storage.readers, storage.max_readers
    );
    if !dict.memo_functions().is_empty() {
        println!(
            "memoized     {} functions (see `memo`)",
            dict.memo_functions().len()
        );
    }
    Ok(Outcome::Fine)
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_owned()
    } else {
        items.join("; ")
    }
}

/// Which entries `ls` shows.
struct Filter {
    prefix: Option<String>,
    idle: Option<Duration>,
    older: Option<Duration>,
    limit: Option<u64>,
}

impl Filter {
    fn keeps(&self, view: &View<'_>, entry: &Entry) -> bool {
        self.idle.is_none_or(|idle| age(entry.accessed) >= idle)
            && self.older.is_none_or(|older| age(entry.created) >= older)
            && self
                .prefix
                .as_ref()
                .is_none_or(|p| view.key_text(&entry.key).starts_with(p.as_str()))
    }
}

fn ls(dir: &Path, filter: &Filter, as_json: bool) -> Result<Outcome, Failure> {
    let dict = open(dir)?;
    let view = View::new(&dict);
    let mut shown = 0;
    let mut unreadable = 0;
    for entry in dict.entries() {
        if filter.limit.is_some_and(|limit| shown >= limit) {
            break;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                unreadable += 1;
                eprintln!("persistdict: {}", failed(dir, e));
                continue;
            }
        };
        if !filter.keeps(&view, &entry) {
            continue;
        }
        shown += 1;
        if as_json {
            print_json(&json!({
                "key": view.key_for_scripts(&entry.key),
                "size": entry.value.len(),
                "created_ms": ms(entry.created),
                "accessed_ms": ms(entry.accessed),
                "hashed": entry.hashed,
            }));
        } else {
            println!(
                "{}\t{}\tcreated {}\taccessed {}",
                view.key_text(&entry.key),
                size(entry.value.len() as u64),
                time(entry.created),
                time(entry.accessed)
            );
        }
    }
    Ok(if unreadable > 0 {
        Outcome::Problems
    } else {
        Outcome::Fine
    })
}

/// The entry of a key given on the command line.
fn find(
    dict: &Inspector,
    dir: &Path,
    key: &str,
    is_hex: bool,
) -> Result<(Vec<u8>, Entry), Failure> {
    let bytes = View::new(dict)
        .parse_key(key, is_hex)
        .map_err(|e| failed(dir, e))?;
    match dict.get(&bytes).map_err(|e| failed(dir, e))? {
        Some(entry) => Ok((bytes, entry)),
        None => Err(failed(dir, format!("no entry under key {key}"))),
    }
}

fn get(dir: &Path, key: &str, is_hex: bool, as_json: bool) -> Result<Outcome, Failure> {
    let dict = open(dir)?;
    let (_, entry) = find(&dict, dir, key, is_hex)?;
    let view = View::new(&dict);
    if as_json {
        match view.value(&entry) {
            Shown::Json(v) => print_json(&v),
            Shown::Bytes(why) => {
                return Err(failed(
                    dir,
                    format!("the value of {key} can't be shown as JSON: {why}"),
                ));
            }
        }
    } else {
        println!("{}", view.value_text(&entry));
    }
    Ok(Outcome::Fine)
}

fn meta(dir: &Path, key: &str, is_hex: bool, as_json: bool) -> Result<Outcome, Failure> {
    let dict = open(dir)?;
    let (_, entry) = find(&dict, dir, key, is_hex)?;
    let view = View::new(&dict);
    let ty = dict.value_shape(&entry).map(ToString::to_string);
    if as_json {
        print_json(&json!({
            "key": view.key_for_scripts(&entry.key),
            "key_hex": hex(&entry.key),
            "size": entry.value.len(),
            "created_ms": ms(entry.created),
            "accessed_ms": ms(entry.accessed),
            "hashed": entry.hashed,
            "type": ty,
            "tag": entry.tag.map(|t| hex(&t)),
        }));
    } else {
        println!("key       {}", view.key_text(&entry.key));
        println!(
            "stored as 0x{}{}",
            hex(&entry.key),
            if entry.hashed {
                " (under a digest)"
            } else {
                ""
            }
        );
        println!("size      {} bytes", entry.value.len());
        println!("created   {}", time(entry.created));
        println!("accessed  {}", time(entry.accessed));
        println!("type      {}", ty.as_deref().unwrap_or("not recorded"));
    }
    Ok(Outcome::Fine)
}

fn rm(dir: &Path, key: &str, is_hex: bool) -> Result<Outcome, Failure> {
    let dict = open_writable(dir)?;
    let bytes = View::new(&dict)
        .parse_key(key, is_hex)
        .map_err(|e| failed(dir, e))?;
    if dict.remove(&bytes).map_err(|e| failed(dir, e))? {
        println!("removed {key}");
        Ok(Outcome::Fine)
    } else {
        Err(failed(dir, format!("no entry under key {key}")))
    }
}

fn check(dir: &Path, repair: bool, as_json: bool) -> Result<Outcome, Failure> {
    let dict = if repair {
        open_writable(dir)?
    } else {
        open(dir)?
    };
    let view = View::new(&dict);
    let report = dict.check(repair).map_err(|e| failed(dir, e))?;
    // Values that don't read as the type they were written as: reported, never removed.
    let mut undecodable = Vec::new();
    let bar = progress(dict.len().ok(), "decoding values");
    for entry in dict.entries() {
        bar.inc(1);
        let Ok(entry) = entry else { continue };
        if let Shown::Bytes(why) = view.value(&entry)
            && (entry.tag.is_some() || dict.settings().value_codec == "json")
        {
            undecodable.push((view.key_text(&entry.key), why));
        }
    }
    bar.finish_and_clear();
    let found = report.quarantined + report.repaired + undecodable.len() as u64;
    if as_json {
        print_json(&json!({
            "checked": report.checked,
            "quarantined": report.quarantined,
            "repaired": report.repaired,
            "repair": repair,
            "problems": report.problems.iter().map(|p| json!({
                "key": view.key_text(&p.key),
                "what": p.what,
            })).collect::<Vec<_>>(),
            "undecodable": undecodable.iter().map(|(k, why)| json!({"key": k, "why": why})).collect::<Vec<_>>(),
        }));
    } else {
        let verb = if repair { "" } else { "would be " };
        println!(
            "checked {} records: {} unreadable ({verb}quarantined), {} inconsistencies ({verb}repaired), {} values that don't decode",
            report.checked,
            report.quarantined,
            report.repaired,
            undecodable.len()
        );
        for p in &report.problems {
            println!("  {}: {}", view.key_text(&p.key), p.what);
        }
        for (key, why) in &undecodable {
            println!("  {key}: value {why} (kept)");
        }
        if found > 0 && !repair && report.quarantined + report.repaired > 0 {
            println!("run `persistdict check --repair` to repair");
        }
    }
    Ok(if found > 0 {
        Outcome::Problems
    } else {
        Outcome::Fine
    })
}

fn expire(dir: &Path, idle: Option<Duration>, dry_run: bool) -> Result<Outcome, Failure> {
    let dict = if dry_run {
        open(dir)?
    } else {
        open_writable(dir)?
    };
    let idle = match (idle, dict.settings().expiry) {
        (Some(idle), _) => idle,
        (None, Expiry::After(after)) => after,
        (None, Expiry::Never) => {
            println!("entries of this dict never expire; nothing removed (use --idle)");
            return Ok(Outcome::Fine);
        }
        (None, _) => {
            return Err(failed(
                dir,
                "the dict's expiry is not recorded; say how long with --idle",
            ));
        }
    };
    if dry_run {
        let idle_entries = dict
            .entries()
            .filter(|e| e.as_ref().is_ok_and(|e| age(e.accessed) >= idle))
            .count();
        println!(
            "{idle_entries} entries not accessed for {}; nothing removed (dry run)",
            humantime::format_duration(idle)
        );
        return Ok(Outcome::Fine);
    }
    let bar = progress(None, "expiring");
    bar.enable_steady_tick(Duration::from_millis(100));
    let removed = dict.expire(idle).map_err(|e| failed(dir, e))?;
    bar.finish_and_clear();
    println!(
        "removed {removed} entries not accessed for {}",
        humantime::format_duration(idle)
    );
    Ok(Outcome::Fine)
}

fn compact(dir: &Path) -> Result<Outcome, Failure> {
    let bar = progress(None, "compacting");
    bar.enable_steady_tick(Duration::from_millis(100));
    let done = inspect::compact(dir).map_err(|e| failed(dir, e))?;
    bar.finish_and_clear();
    println!(
        "compacted {}: {} -> {}",
        dir.display(),
        size(done.before),
        size(done.after)
    );
    Ok(Outcome::Fine)
}

/// What `memo` counts per namespace.
#[derive(Default)]
struct Tally {
    entries: u64,
    bytes: u64,
    accessed: Span,
}

fn memo(dir: &Path, clear: Option<&str>, as_json: bool) -> Result<Outcome, Failure> {
    let dict = if clear.is_some() {
        open_writable(dir)?
    } else {
        open(dir)?
    };
    let functions = dict.memo_functions();
    if functions.is_empty() {
        return Err(failed(
            dir,
            "not a `#[memoize]` store, or one whose functions were never recorded (they are when a function first opens it)",
        ));
    }
    if let Some(function) = clear {
        let namespaces: Vec<[u8; 16]> = functions
            .iter()
            .filter(|f| f.function == function)
            .map(|f| f.namespace)
            .collect();
        if namespaces.is_empty() {
            return Err(failed(
                dir,
                format!("no function `{function}` in this store"),
            ));
        }
        let keys: Vec<Vec<u8>> = dict
            .entries()
            .filter_map(Result::ok)
            .filter(|e| Inspector::memo_namespace(&e.key).is_some_and(|n| namespaces.contains(&n)))
            .map(|e| e.key)
            .collect();
        let removed = dict.remove_all(&keys).map_err(|e| failed(dir, e))?;
        println!("removed {removed} results of {function}");
        return Ok(Outcome::Fine);
    }
    let mut tallies: Vec<([u8; 16], Tally)> = functions
        .iter()
        .map(|f| (f.namespace, Tally::default()))
        .collect();
    let mut other = Tally::default();
    let bar = progress(dict.len().ok(), "reading results");
    for entry in dict.entries() {
        bar.inc(1);
        let Ok(entry) = entry else { continue };
        let namespace = Inspector::memo_namespace(&entry.key);
        let tally = match tallies.iter_mut().find(|(n, _)| Some(*n) == namespace) {
            Some((_, t)) => t,
            None => &mut other,
        };
        tally.entries += 1;
        tally.bytes += (entry.key.len() + entry.value.len()) as u64;
        tally.accessed.add(entry.accessed);
    }
    bar.finish_and_clear();
    for (f, (_, t)) in functions.iter().zip(&tallies) {
        if as_json {
            print_json(&json!({
                "function": f.function,
                "version": f.version,
                "tracks_source": f.tracks_source,
                "namespace": hex(&f.namespace),
                "entries": t.entries,
                "bytes": t.bytes,
                "accessed": t.accessed.json(),
            }));
        } else {
            println!(
                "{} (version {}, namespace {}): {} entries, {}, accessed {}",
                f.function,
                f.version,
                hex(&f.namespace),
                t.entries,
                size(t.bytes),
                t.accessed.text()
            );
        }
    }
    if other.entries > 0 {
        if as_json {
            print_json(&json!({
                "function": Value::Null,
                "entries": other.entries,
                "bytes": other.bytes,
                "accessed": other.accessed.json(),
            }));
        } else {
            println!(
                "(no function recorded): {} entries, {}, accessed {}",
                other.entries,
                size(other.bytes),
                other.accessed.text()
            );
        }
    }
    Ok(Outcome::Fine)
}
