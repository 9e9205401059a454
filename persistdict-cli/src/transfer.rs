//! `export` and `import`: a dict as JSON Lines and back, loss-free.
//!
//! The first line describes the dict: `{"persistdict_export": 1, ...settings, "key_types":
//! [shape], "value_types": {"<tag hex>": shape}, "memo_functions": [...], "entries": n}`
//! (shapes as serde writes `persistdict::inspect::Shape` in JSON). Each further line is one
//! entry in insertion order: `"key"` (JSON) or `"key_b64"`, `"value"` (JSON) or `"value_b64"`,
//! `"type"` (the value's type tag in hex, if it has one), `"created_ms"`, `"accessed_ms"`. A key
//! or value is written as JSON only where reading that JSON back gives the very bytes stored.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use persistdict::inspect::{Entry, Expiry, Inspector, MemoFunction, Shape, TypeTag};
use serde_json::{Map, Value, json};

use crate::commands::{expiry_ms, failed, open, open_writable};
use crate::view::{View, hex, unhex};
use crate::{Failure, Outcome, ms, progress};

/// The version of the export format, in its first line.
const EXPORT_VERSION: u64 = 1;

pub(crate) fn export(dir: &Path, output: Option<&Path>) -> Result<Outcome, Failure> {
    let dict = open(dir)?;
    let view = View::new(&dict);
    let len = dict.len().map_err(|e| failed(dir, e))?;
    let out: Box<dyn Write> = match output {
        Some(path) => Box::new(File::create(path).map_err(|e| failed(path, e))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    let write_err = |e: std::io::Error| failed(output.unwrap_or(Path::new("standard output")), e);
    let s = dict.settings();
    let value_types: Map<String, Value> = dict
        .value_types()
        .iter()
        .map(|(tag, shape)| (hex(tag), serde_json::to_value(shape).unwrap_or_default()))
        .collect();
    let memo: Vec<Value> = dict
        .memo_functions()
        .iter()
        .map(|f| {
            json!({
                "namespace": hex(&f.namespace),
                "function": f.function,
                "version": f.version,
                "tracks_source": f.tracks_source,
            })
        })
        .collect();
    let header = json!({
        "persistdict_export": EXPORT_VERSION,
        "format_version": s.format_version,
        "key_size_limit": s.key_size_limit,
        "key_codec": s.key_codec,
        "value_codec": s.value_codec,
        "initialized": s.initialized,
        "expire_after_ms": expiry_ms(s.expiry),
        "key_types": dict.key_types(),
        "value_types": value_types,
        "memo_functions": memo,
        "entries": len,
    });
    writeln!(out, "{header}").map_err(write_err)?;
    let bar = progress(Some(len), "exporting");
    let mut unreadable = 0;
    for entry in dict.entries() {
        bar.inc(1);
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                bar.suspend(|| eprintln!("persistdict: {} (not exported)", failed(dir, e)));
                unreadable += 1;
                continue;
            }
        };
        let mut line = Map::new();
        match view.key_lossless(&entry.key) {
            Some(key) => line.insert("key".into(), key),
            None => line.insert("key_b64".into(), BASE64.encode(&entry.key).into()),
        };
        match view.value_lossless(&entry) {
            Some(value) => line.insert("value".into(), value),
            None => line.insert("value_b64".into(), BASE64.encode(&entry.value).into()),
        };
        if let Some(tag) = entry.tag {
            line.insert("type".into(), hex(&tag).into());
        }
        line.insert("created_ms".into(), ms(entry.created).into());
        line.insert("accessed_ms".into(), ms(entry.accessed).into());
        writeln!(out, "{}", Value::Object(line)).map_err(write_err)?;
    }
    bar.finish_and_clear();
    out.flush().map_err(write_err)?;
    if unreadable > 0 {
        eprintln!("persistdict: {unreadable} entries could not be read; run `check`");
        return Ok(Outcome::Problems);
    }
    Ok(Outcome::Fine)
}

/// A field of the export's first line.
fn field<'v>(header: &'v Value, name: &str) -> Result<&'v Value, String> {
    header
        .get(name)
        .ok_or_else(|| format!("the export's first line has no `{name}`"))
}

fn text_field(header: &Value, name: &str) -> Result<String, String> {
    field(header, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{name}` is not a string"))
}

fn u64_field(header: &Value, name: &str) -> Result<u64, String> {
    field(header, name)?
        .as_u64()
        .ok_or_else(|| format!("`{name}` is not a number"))
}

pub(crate) fn import(dir: &Path, input: Option<&Path>) -> Result<Outcome, Failure> {
    let source = input.unwrap_or(Path::new("standard input"));
    let reader: Box<dyn BufRead> = match input {
        Some(path) => Box::new(BufReader::new(
            File::open(path).map_err(|e| failed(path, e))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut lines = reader.lines().enumerate();
    let bad = |n: usize, why: String| failed(source, format!("line {}: {why}", n + 1));
    let header: Value = match lines.next() {
        Some((n, line)) => {
            let line = line.map_err(|e| failed(source, e))?;
            serde_json::from_str(&line).map_err(|e| bad(n, format!("not JSON: {e}")))?
        }
        None => return Err(failed(source, "the export is empty")),
    };
    let Header {
        key_codec,
        value_codec,
        limit,
        expiry,
        key_types,
        value_types,
        memo,
        initialized,
    } = Header::parse(&header).map_err(|why| bad(0, why))?;
    let dict = if dir.join("data.mdb").is_file() {
        let dict = open_writable(dir)?;
        let s = dict.settings();
        if (
            s.key_codec.as_str(),
            s.value_codec.as_str(),
            s.key_size_limit,
        ) != (key_codec.as_str(), value_codec.as_str(), limit)
        {
            return Err(failed(
                dir,
                format!(
                    "the dict there was made with key codec {}, value codec {}, key size limit {}; the export with {key_codec}, {value_codec}, {limit}",
                    s.key_codec, s.value_codec, s.key_size_limit
                ),
            ));
        }
        dict
    } else {
        Inspector::create(dir, limit, &key_codec, &value_codec, expiry)
            .map_err(|e| failed(dir, e))?
    };
    dict.record_types(&value_types, &key_types)
        .and_then(|()| dict.record_memo_functions(&memo))
        .and_then(|()| {
            if initialized {
                dict.mark_initialized()
            } else {
                Ok(())
            }
        })
        .map_err(|e| failed(dir, e))?;
    // Opened again to read keys and values through the types just recorded.
    drop(dict);
    let dict = open_writable(dir)?;
    let view = View::new(&dict);
    let expected = header.get("entries").and_then(Value::as_u64);
    let bar = progress(expected, "importing");
    let entries = lines.map(|(n, line)| {
        let line = line.map_err(|e| Stop(failed(source, e)))?;
        let value: Value =
            serde_json::from_str(&line).map_err(|e| Stop(bad(n, format!("not JSON: {e}"))))?;
        entry(&view, &dict, &value).map_err(|why| Stop(bad(n, why)))
    });
    let stored = dict
        .import(entries, |n| bar.set_position(n))
        .map_err(|Stop(why)| {
            bar.finish_and_clear();
            format!("{why} (the entries before it are imported)")
        })?;
    bar.finish_and_clear();
    println!("imported {stored} entries into {}", dir.display());
    Ok(Outcome::Fine)
}

/// What the first line of an export says.
struct Header {
    key_codec: String,
    value_codec: String,
    limit: u32,
    expiry: Expiry,
    key_types: Vec<Shape>,
    value_types: Vec<(TypeTag, Shape)>,
    memo: Vec<MemoFunction>,
    initialized: bool,
}

impl Header {
    fn parse(header: &Value) -> Result<Header, String> {
        if header.get("persistdict_export").and_then(Value::as_u64) != Some(EXPORT_VERSION) {
            return Err("not a persistdict export of a version this tool reads".into());
        }
        let limit = u32::try_from(u64_field(header, "key_size_limit")?)
            .map_err(|_| "`key_size_limit` is out of range")?;
        let expiry = match header.get("expire_after_ms").and_then(Value::as_u64) {
            None => Expiry::Unknown,
            Some(0) => Expiry::Never,
            Some(n) => Expiry::After(Duration::from_millis(n)),
        };
        let key_types = serde_json::from_value(field(header, "key_types")?.clone())
            .map_err(|e| format!("`key_types`: {e}"))?;
        let mut value_types = Vec::new();
        if let Some(types) = field(header, "value_types")?.as_object() {
            for (tag, shape) in types {
                let tag = unhex(tag)
                    .and_then(|t| TypeTag::try_from(t).ok())
                    .ok_or_else(|| format!("{tag:?} is not a type tag"))?;
                let shape = serde_json::from_value(shape.clone())
                    .map_err(|e| format!("a value type: {e}"))?;
                value_types.push((tag, shape));
            }
        }
        Ok(Header {
            key_codec: text_field(header, "key_codec")?,
            value_codec: text_field(header, "value_codec")?,
            limit,
            expiry,
            key_types,
            value_types,
            memo: memo_functions(header)?,
            initialized: header.get("initialized").and_then(Value::as_bool) == Some(true),
        })
    }
}

/// Why an import stopped: a line of the export, or the dict.
struct Stop(Failure);

impl From<persistdict::Error> for Stop {
    fn from(error: persistdict::Error) -> Self {
        Stop(error.to_string())
    }
}

fn memo_functions(header: &Value) -> Result<Vec<MemoFunction>, String> {
    let Some(list) = header.get("memo_functions").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|f| {
            let namespace = unhex(&text_field(f, "namespace")?)
                .and_then(|n| <[u8; 16]>::try_from(n).ok())
                .ok_or("a memo function's namespace is not 16 bytes of hex")?;
            let version = u32::try_from(u64_field(f, "version")?)
                .map_err(|_| "a memo function's version is out of range")?;
            let tracks_source = f
                .get("tracks_source")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            Ok(MemoFunction::new(
                namespace,
                text_field(f, "function")?,
                version,
                tracks_source,
            ))
        })
        .collect()
}

/// One entry of an export's line.
fn entry(view: &View<'_>, dict: &Inspector, line: &Value) -> Result<Entry, String> {
    let bytes = |b64: &str, json: &str, encode: &dyn Fn(&Value) -> Result<Vec<u8>, String>| {
        if let Some(text) = line.get(b64) {
            let text = text
                .as_str()
                .ok_or_else(|| format!("`{b64}` is not a string"))?;
            BASE64.decode(text).map_err(|e| format!("`{b64}`: {e}"))
        } else {
            encode(
                line.get(json)
                    .ok_or_else(|| format!("no `{json}` nor `{b64}`"))?,
            )
        }
    };
    let tag = match line.get("type") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_str()
                .and_then(unhex)
                .and_then(|t| TypeTag::try_from(t).ok())
                .ok_or("`type` is not a type tag")?,
        ),
    };
    let key = bytes("key_b64", "key", &|json| view.encode_key(json))?;
    let shape = tag.and_then(|t| dict.value_types().get(&t));
    let value = bytes("value_b64", "value", &|json| view.encode_value(shape, json))?;
    let time = |name: &str| -> Result<SystemTime, String> {
        Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(u64_field(line, name)?))
    };
    Ok(Entry::new(
        key,
        value,
        tag,
        time("created_ms")?,
        time("accessed_ms")?,
    ))
}
