//! How keys and values are shown, and how a key typed on the command line becomes the bytes
//! it is stored under: decoded wherever the stored settings allow (JSON-codec bytes as JSON,
//! postcard bytes through the recorded shapes), raw otherwise, never a panic.

use std::fmt::Write;

use persistdict::inspect::{Entry, Inspector, MemoFunction, Shape};
use serde_json::Value;

use crate::shaped;

/// The codec names the tool reads (`persistdict::Postcard`, `persistdict::Json`).
const POSTCARD: &str = "postcard";
const JSON: &str = "json";

/// A dict's keys and values as the tool shows them.
pub(crate) struct View<'d> {
    dict: &'d Inspector,
}

/// A stored value as shown, or why it is shown as bytes.
pub(crate) enum Shown {
    Json(Value),
    Bytes(String),
}

impl<'d> View<'d> {
    pub(crate) fn new(dict: &'d Inspector) -> Self {
        View { dict }
    }

    /// Whether the dict is a `#[memoize]` store.
    pub(crate) fn is_memo(&self) -> bool {
        !self.dict.memo_functions().is_empty()
    }

    /// The key as JSON, if its codec and recorded type allow.
    pub(crate) fn key_json(&self, key: &[u8]) -> Option<Value> {
        match self.dict.settings().key_codec.as_str() {
            JSON => serde_json::from_slice(key).ok(),
            POSTCARD => {
                let shapes = self.dict.key_types();
                if shapes.is_empty() {
                    // No type recorded (an older dict): a key that reads as a string is one.
                    return shaped::decode(&Shape::Str, key).ok();
                }
                shapes.iter().find_map(|s| shaped::decode(s, key).ok())
            }
            _ => None,
        }
    }

    /// The key as one line: a string key as it is, other keys as JSON, a `#[memoize]` key
    /// as its function and the hex of its arguments, anything else as hex.
    pub(crate) fn key_text(&self, key: &[u8]) -> String {
        if let Some(function) = self.memo_function(key) {
            let args = Inspector::memo_arguments(key).unwrap_or_default();
            return format!(
                "{}#{} args 0x{}",
                function.function,
                function.version,
                hex(args)
            );
        }
        match self.key_json(key) {
            Some(Value::String(s)) => s,
            Some(json) => json.to_string(),
            None => format!("0x{}", hex(key)),
        }
    }

    /// The key as JSON for scripts: decoded, or `{"hex": ...}`.
    pub(crate) fn key_for_scripts(&self, key: &[u8]) -> Value {
        if self.is_memo() {
            let mut out = serde_json::Map::new();
            if let Some(f) = self.memo_function(key) {
                out.insert("function".into(), f.function.clone().into());
                out.insert("version".into(), f.version.into());
            }
            out.insert("hex".into(), hex(key).into());
            return Value::Object(out);
        }
        self.key_json(key)
            .unwrap_or_else(|| serde_json::json!({ "hex": hex(key) }))
    }

    /// The recorded function whose namespace `key` starts with.
    pub(crate) fn memo_function(&self, key: &[u8]) -> Option<&'d MemoFunction> {
        let namespace = Inspector::memo_namespace(key)?;
        self.dict
            .memo_functions()
            .iter()
            .find(|f| f.namespace == namespace)
    }

    /// The value of `entry` as JSON, or why it can't be.
    pub(crate) fn value(&self, entry: &Entry) -> Shown {
        let settings = self.dict.settings();
        match settings.value_codec.as_str() {
            JSON => match serde_json::from_slice(&entry.value) {
                Ok(v) => Shown::Json(v),
                Err(e) => Shown::Bytes(format!("not JSON: {e}")),
            },
            POSTCARD => match self.dict.value_shape(entry) {
                Some(shape) => match shaped::decode(shape, &entry.value) {
                    Ok(v) => Shown::Json(v),
                    Err(why) => Shown::Bytes(format!(
                        "does not read as its recorded type `{shape}`: {why}"
                    )),
                },
                None if entry.tag.is_some() => {
                    Shown::Bytes("written as a type this dict has no record of".into())
                }
                None => Shown::Bytes("written without a type description".into()),
            },
            other => Shown::Bytes(format!("codec `{other}` is not one this tool reads")),
        }
    }

    /// The value of `entry` for people: pretty JSON, or its size and hex and why.
    pub(crate) fn value_text(&self, entry: &Entry) -> String {
        match self.value(entry) {
            Shown::Json(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Shown::Bytes(why) => format!(
                "{} bytes, shown raw ({why}):\n0x{}",
                entry.value.len(),
                hex(&entry.value)
            ),
        }
    }

    /// The key's JSON if it gives back exactly these bytes (for a loss-free export).
    pub(crate) fn key_lossless(&self, key: &[u8]) -> Option<Value> {
        // Byte-string keys (`#[memoize]`'s) read better, and shorter, as base64.
        if self.is_memo() {
            return None;
        }
        let json = self.key_json(key)?;
        (self.encode_key(&json).ok()? == key).then_some(json)
    }

    /// The value's JSON if it gives back exactly these bytes (for a loss-free export).
    pub(crate) fn value_lossless(&self, entry: &Entry) -> Option<Value> {
        let Shown::Json(json) = self.value(entry) else {
            return None;
        };
        (self
            .encode_value(
                entry.tag.and_then(|t| self.dict.value_types().get(&t)),
                &json,
            )
            .ok()?
            == entry.value)
            .then_some(json)
    }

    /// `json` as the key codec stores it.
    pub(crate) fn encode_key(&self, json: &Value) -> Result<Vec<u8>, String> {
        match self.dict.settings().key_codec.as_str() {
            JSON => Ok(serde_json::to_vec(json).unwrap_or_default()),
            POSTCARD => {
                let shapes = self.dict.key_types();
                if shapes.is_empty() {
                    return shaped::encode(&Shape::Str, json);
                }
                let mut why = Vec::new();
                for shape in shapes {
                    match shaped::encode(shape, json) {
                        Ok(bytes) => return Ok(bytes),
                        Err(e) => why.push(format!("as `{shape}`: {e}")),
                    }
                }
                Err(why.join("; "))
            }
            other => Err(format!(
                "keys of codec `{other}` can only be given as bytes (--hex)"
            )),
        }
    }

    /// `json` as the value codec stores it, through `shape` for postcard.
    pub(crate) fn encode_value(
        &self,
        shape: Option<&Shape>,
        json: &Value,
    ) -> Result<Vec<u8>, String> {
        match (self.dict.settings().value_codec.as_str(), shape) {
            (JSON, _) => Ok(serde_json::to_vec(json).unwrap_or_default()),
            (POSTCARD, Some(shape)) => shaped::encode(shape, json),
            (POSTCARD, None) => Err("the value's type has no recorded shape".into()),
            (other, _) => Err(format!("codec `{other}` is not one this tool writes")),
        }
    }

    /// The stored bytes of a key given on the command line: hex with `--hex`; else the text
    /// itself for string keys, or JSON read through the key's type.
    pub(crate) fn parse_key(&self, arg: &str, is_hex: bool) -> Result<Vec<u8>, String> {
        if is_hex {
            return unhex(arg).ok_or_else(|| format!("{arg:?} is not hex"));
        }
        let string_keys = self.dict.key_types().iter().all(|s| *s == Shape::Str)
            && self.dict.settings().key_codec == POSTCARD;
        if string_keys {
            return self.encode_key(&Value::String(arg.to_owned()));
        }
        let json = serde_json::from_str(arg).unwrap_or_else(|_| Value::String(arg.to_owned()));
        self.encode_key(&json).map_err(|why| {
            format!("{arg} is not a key of this dict ({why}); give its bytes with --hex")
        })
    }
}

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes from hex, with or without a `0x` in front.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix("0x").unwrap_or(text);
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 1, 255])), Some(vec![0, 1, 255]));
        assert_eq!(unhex("0x0aff"), Some(vec![10, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
