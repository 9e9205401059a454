//! Postcard bytes read as JSON, and JSON written as postcard bytes, through a stored
//! [`Shape`]: how the tool shows values and keys without the program's types, and reads them
//! back on import.
//!
//! Postcard (1.x wire format): `u8`/`i8` one byte, wider integers LEB128 varints (signed ones
//! zigzag-encoded), floats little-endian, `bool` one byte, `char` and strings and bytes a
//! varint length then the bytes, an option a 0 or 1 byte then the value, sequences and maps a
//! varint count then the items, tuples and structs their fields in order, an enum a varint
//! variant index then the variant's content.
//!
//! JSON: numbers (an integer JSON can't hold exactly, and a float that isn't finite, as a
//! string), strings, `null` for unit and `None`, arrays for sequences, tuples and bytes,
//! objects for structs and for maps with string keys (other maps as arrays of `[key, value]`
//! pairs), and an enum as its variant's name (unit variants) or `{"Variant": content}`.

use persistdict::inspect::{Shape, Variant};
use serde_json::{Map, Number, Value};

/// How deep values may nest: deeper is taken for damage, not data.
const MAX_DEPTH: usize = 128;

/// How many items of no bytes a collection may hold beyond one per byte of the value.
const MAX_EMPTY_ITEMS: usize = 1 << 20;

/// Why bytes don't read as a shape, or JSON doesn't fit one.
pub(crate) type Misfit = String;

/// `bytes`, which must be entirely one value of `shape`, as JSON.
pub(crate) fn decode(shape: &Shape, bytes: &[u8]) -> Result<Value, Misfit> {
    let mut reader = Reader { bytes, pos: 0 };
    let value = reader.value(shape, &mut Vec::new())?;
    if reader.pos != bytes.len() {
        return Err(format!(
            "{} bytes left after the value",
            bytes.len() - reader.pos
        ));
    }
    Ok(value)
}

/// `value` as postcard bytes of `shape`.
pub(crate) fn encode(shape: &Shape, value: &Value) -> Result<Vec<u8>, Misfit> {
    let mut out = Vec::new();
    write(shape, value, &mut Vec::new(), &mut out)?;
    Ok(out)
}

/// The container a [`Shape::Recursive`] named `name` stands for: the nearest enclosing one.
fn resolve<'s>(name: &str, enclosing: &[&'s Shape]) -> Result<&'s Shape, Misfit> {
    enclosing
        .iter()
        .rev()
        .find(|s| container_name(s) == Some(name))
        .copied()
        .ok_or_else(|| format!("the shape names `{name}` outside of it"))
}

fn container_name(shape: &Shape) -> Option<&str> {
    match shape {
        Shape::UnitStruct(n)
        | Shape::NewType(n, _)
        | Shape::TupleStruct(n, _)
        | Shape::Struct(n, _)
        | Shape::Enum(n, _) => Some(n),
        _ => None,
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Misfit> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("the value ends early")?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, Misfit> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u128, Misfit> {
        let mut value: u128 = 0;
        for shift in (0..19 * 7).step_by(7) {
            let byte = self.byte()?;
            value |= u128::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or("a varint is too long")?;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint is too long".into())
    }

    fn unsigned(&mut self, max: u128) -> Result<u128, Misfit> {
        let v = self.varint()?;
        if v > max {
            return Err(format!("{v} is out of range"));
        }
        Ok(v)
    }

    fn signed(&mut self, bits: u32) -> Result<i128, Misfit> {
        let z = self.varint()?;
        // Zigzag: 0, -1, 1, -2, ...
        signed_in_range((z >> 1).cast_signed() ^ -(z & 1).cast_signed(), bits)
    }

    fn len(&mut self) -> Result<usize, Misfit> {
        let n = self.varint()?;
        usize::try_from(n).map_err(|_| "a length is too large".into())
    }

    /// Refuses a collection of more items than [`MAX_EMPTY_ITEMS`] plus its bytes: items of
    /// no bytes (units) are the only ones that don't run out of bytes, and damage can claim
    /// any number of them.
    fn bound(&self, items: usize) -> Result<(), Misfit> {
        if items > MAX_EMPTY_ITEMS + self.bytes.len() {
            return Err("a collection claims more items than its bytes hold".into());
        }
        Ok(())
    }

    fn text(&mut self) -> Result<String, Misfit> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8".into())
    }

    fn value<'s>(
        &mut self,
        shape: &'s Shape,
        enclosing: &mut Vec<&'s Shape>,
    ) -> Result<Value, Misfit> {
        if enclosing.len() > MAX_DEPTH {
            return Err("values nest too deep".into());
        }
        let pushed = container_name(shape).is_some();
        if pushed {
            enclosing.push(shape);
        }
        let value = self.value_in(shape, enclosing);
        if pushed {
            enclosing.pop();
        }
        value
    }

    // One arm per shape, in the order of `docs/format.md`'s table: split, the format would
    // be harder to check against it.
    #[allow(clippy::too_many_lines)]
    fn value_in<'s>(
        &mut self,
        shape: &'s Shape,
        enclosing: &mut Vec<&'s Shape>,
    ) -> Result<Value, Misfit> {
        Ok(match shape {
            Shape::Unit | Shape::UnitStruct(_) => Value::Null,
            Shape::Bool => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{b} is not a bool")),
            },
            Shape::U8 => Value::from(self.byte()?),
            Shape::I8 => Value::from(self.byte()?.cast_signed()),
            Shape::U16 => Value::from(self.unsigned(u16::MAX.into())? as u64),
            Shape::U32 => Value::from(self.unsigned(u32::MAX.into())? as u64),
            Shape::U64 => Value::from(self.unsigned(u64::MAX.into())? as u64),
            Shape::U128 => integer(self.unsigned(u128::MAX)?.to_string()),
            Shape::I16 => Value::from(self.signed(16)? as i64),
            Shape::I32 => Value::from(self.signed(32)? as i64),
            Shape::I64 => Value::from(self.signed(64)? as i64),
            Shape::I128 => integer(self.signed(128)?.to_string()),
            Shape::F32 => {
                let v = f32::from_le_bytes(self.take(4)?.try_into().map_err(|_| "f32")?);
                // The shortest text that reads back as this `f32`, not as the `f64` it widens to.
                float(v.is_finite(), v.to_string(), v.to_string().parse().ok())
            }
            Shape::F64 => {
                let v = f64::from_le_bytes(self.take(8)?.try_into().map_err(|_| "f64")?);
                float(v.is_finite(), v.to_string(), Some(v))
            }
            Shape::Char => {
                let s = self.text()?;
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(_), None) => Value::String(s),
                    _ => return Err("a char is not one character".into()),
                }
            }
            Shape::Str => Value::String(self.text()?),
            Shape::Bytes => {
                let n = self.len()?;
                Value::Array(self.take(n)?.iter().map(|&b| Value::from(b)).collect())
            }
            Shape::Option(inner) => match self.byte()? {
                0 => Value::Null,
                1 => self.value(inner, enclosing)?,
                b => return Err(format!("{b} is not an option's tag")),
            },
            Shape::Seq(item) => {
                let n = self.len()?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(item, enclosing)?);
                    self.bound(items.len())?;
                }
                Value::Array(items)
            }
            Shape::Map(k, v) => {
                let n = self.len()?;
                if matches!(**k, Shape::Str | Shape::Char) {
                    let mut map = Map::new();
                    for _ in 0..n {
                        let Value::String(key) = self.value(k, enclosing)? else {
                            return Err("a map key is not a string".into());
                        };
                        let value = self.value(v, enclosing)?;
                        self.bound(map.len())?;
                        if map.insert(key, value).is_some() {
                            return Err("a map repeats a key".into());
                        }
                    }
                    Value::Object(map)
                } else {
                    let mut pairs = Vec::new();
                    for _ in 0..n {
                        let key = self.value(k, enclosing)?;
                        let value = self.value(v, enclosing)?;
                        pairs.push(Value::Array(vec![key, value]));
                        self.bound(pairs.len())?;
                    }
                    Value::Array(pairs)
                }
            }
            Shape::Tuple(items) | Shape::TupleStruct(_, items) => Value::Array(
                items
                    .iter()
                    .map(|s| self.value(s, enclosing))
                    .collect::<Result<_, _>>()?,
            ),
            Shape::NewType(_, inner) => self.value(inner, enclosing)?,
            Shape::Struct(_, fields) => Value::Object(self.fields(fields, enclosing)?),
            Shape::Enum(name, variants) => {
                let index = self.unsigned(u32::MAX.into())? as u32;
                let Some((_, variant, content)) = variants.iter().find(|(i, _, _)| *i == index)
                else {
                    return Err(format!("`{name}` has no variant {index}"));
                };
                let content = match content {
                    Variant::Unit => return Ok(Value::String(variant.clone())),
                    Variant::NewType(inner) => self.value(inner, enclosing)?,
                    Variant::Tuple(items) => Value::Array(
                        items
                            .iter()
                            .map(|s| self.value(s, enclosing))
                            .collect::<Result<_, _>>()?,
                    ),
                    Variant::Struct(fields) => Value::Object(self.fields(fields, enclosing)?),
                    _ => {
                        return Err(format!(
                            "variant `{variant}` has a content this tool doesn't know"
                        ));
                    }
                };
                Value::Object(Map::from_iter([(variant.clone(), content)]))
            }
            Shape::Recursive(name) => {
                let target = resolve(name, enclosing)?;
                self.value(target, enclosing)?
            }
            _ => return Err("a shape this tool doesn't know".into()),
        })
    }

    fn fields<'s>(
        &mut self,
        fields: &'s [(String, Shape)],
        enclosing: &mut Vec<&'s Shape>,
    ) -> Result<Map<String, Value>, Misfit> {
        let mut map = Map::new();
        for (name, shape) in fields {
            map.insert(name.clone(), self.value(shape, enclosing)?);
        }
        Ok(map)
    }
}

/// An integer JSON numbers may not hold exactly, as a string.
fn integer(digits: String) -> Value {
    match digits
        .parse::<i64>()
        .map(Value::from)
        .or_else(|_| digits.parse::<u64>().map(Value::from))
    {
        Ok(v) => v,
        Err(_) => Value::String(digits),
    }
}

/// A float as a JSON number, or as its text when JSON has no number for it.
fn float(finite: bool, text: String, value: Option<f64>) -> Value {
    match value.filter(|_| finite).and_then(Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(text),
    }
}

fn write<'s>(
    shape: &'s Shape,
    value: &Value,
    enclosing: &mut Vec<&'s Shape>,
    out: &mut Vec<u8>,
) -> Result<(), Misfit> {
    if enclosing.len() > MAX_DEPTH {
        return Err("values nest too deep".into());
    }
    let pushed = container_name(shape).is_some();
    if pushed {
        enclosing.push(shape);
    }
    let written = write_in(shape, value, enclosing, out);
    if pushed {
        enclosing.pop();
    }
    written
}

fn varint(mut v: u128, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)).cast_unsigned()
}

/// An integer from a JSON number or a string of digits.
fn int_of(value: &Value) -> Result<i128, Misfit> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("{other} is not an integer")),
    }
}

fn uint_of(value: &Value, max: u128) -> Result<u128, Misfit> {
    let v = match value {
        Value::String(s) => s
            .parse::<u128>()
            .map_err(|_| format!("{s:?} is not an integer"))?,
        other => u128::try_from(int_of(other)?).map_err(|_| format!("{other} is negative"))?,
    };
    if v > max {
        return Err(format!("{v} is out of range"));
    }
    Ok(v)
}

fn sint_of(value: &Value, bits: u32) -> Result<i128, Misfit> {
    signed_in_range(int_of(value)?, bits)
}

/// `v`, if a signed integer of `bits` bits holds it.
fn signed_in_range(v: i128, bits: u32) -> Result<i128, Misfit> {
    let (min, max) = if bits == 128 {
        (i128::MIN, i128::MAX)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    };
    if v < min || v > max {
        return Err(format!("{v} is out of range"));
    }
    Ok(v)
}

fn float_of(value: &Value) -> Result<f64, Misfit> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{n} is not a number")),
        Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not a number")),
        other => Err(format!("{other} is not a number")),
    }
}

fn text(s: &str, out: &mut Vec<u8>) {
    varint(s.len() as u128, out);
    out.extend_from_slice(s.as_bytes());
}

fn array<'v>(value: &'v Value, what: &str) -> Result<&'v Vec<Value>, Misfit> {
    value
        .as_array()
        .ok_or_else(|| format!("{value} is not an array ({what})"))
}

// One arm per shape, as in `Reader::value_in`.
#[allow(clippy::too_many_lines)]
fn write_in<'s>(
    shape: &'s Shape,
    value: &Value,
    enclosing: &mut Vec<&'s Shape>,
    out: &mut Vec<u8>,
) -> Result<(), Misfit> {
    match shape {
        Shape::Unit | Shape::UnitStruct(_) => {
            if !value.is_null() {
                return Err(format!("{value} is not null"));
            }
        }
        Shape::Bool => out.push(u8::from(
            value
                .as_bool()
                .ok_or_else(|| format!("{value} is not a bool"))?,
        )),
        Shape::U8 => out.push(uint_of(value, u8::MAX.into())? as u8),
        Shape::I8 => out.push((sint_of(value, 8)? as i8).cast_unsigned()),
        Shape::U16 => varint(uint_of(value, u16::MAX.into())?, out),
        Shape::U32 => varint(uint_of(value, u32::MAX.into())?, out),
        Shape::U64 => varint(uint_of(value, u64::MAX.into())?, out),
        Shape::U128 => varint(uint_of(value, u128::MAX)?, out),
        Shape::I16 => varint(zigzag(sint_of(value, 16)?), out),
        Shape::I32 => varint(zigzag(sint_of(value, 32)?), out),
        Shape::I64 => varint(zigzag(sint_of(value, 64)?), out),
        Shape::I128 => varint(zigzag(sint_of(value, 128)?), out),
        Shape::F32 => {
            // Read as `f32` from the text: the shortest text of an `f32` widened to `f64` and
            // narrowed again could land on a neighbour.
            let v: f32 = match value {
                Value::Number(n) => n
                    .to_string()
                    .parse()
                    .map_err(|_| format!("{n} is not a number"))?,
                other => float_of(other)? as f32,
            };
            out.extend_from_slice(&v.to_le_bytes());
        }
        Shape::F64 => out.extend_from_slice(&float_of(value)?.to_le_bytes()),
        Shape::Char => {
            let s = value
                .as_str()
                .ok_or_else(|| format!("{value} is not a string"))?;
            if s.chars().count() != 1 {
                return Err(format!("{s:?} is not one character"));
            }
            text(s, out);
        }
        Shape::Str => text(
            value
                .as_str()
                .ok_or_else(|| format!("{value} is not a string"))?,
            out,
        ),
        Shape::Bytes => {
            let items = array(value, "bytes")?;
            varint(items.len() as u128, out);
            for item in items {
                out.push(uint_of(item, u8::MAX.into())? as u8);
            }
        }
        Shape::Option(inner) => {
            if value.is_null() {
                out.push(0);
            } else {
                out.push(1);
                write(inner, value, enclosing, out)?;
            }
        }
        Shape::Seq(item) => {
            let items = array(value, "a sequence")?;
            varint(items.len() as u128, out);
            for v in items {
                write(item, v, enclosing, out)?;
            }
        }
        Shape::Map(k, v) => {
            if let Some(map) = value.as_object() {
                varint(map.len() as u128, out);
                for (key, item) in map {
                    write(k, &Value::String(key.clone()), enclosing, out)?;
                    write(v, item, enclosing, out)?;
                }
            } else {
                let pairs = array(value, "a map")?;
                varint(pairs.len() as u128, out);
                for pair in pairs {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([key, item]) => {
                            write(k, key, enclosing, out)?;
                            write(v, item, enclosing, out)?;
                        }
                        _ => return Err(format!("{pair} is not a [key, value] pair")),
                    }
                }
            }
        }
        Shape::Tuple(items) | Shape::TupleStruct(_, items) => {
            write_items(items, value, enclosing, out)?;
        }
        Shape::NewType(_, inner) => write(inner, value, enclosing, out)?,
        Shape::Struct(name, fields) => write_fields(name, fields, value, enclosing, out)?,
        Shape::Enum(name, variants) => {
            let (variant, content) = match value {
                Value::String(v) => (v.as_str(), None),
                Value::Object(map) if map.len() == 1 => {
                    let (v, c) = map.iter().next().ok_or("an empty object")?;
                    (v.as_str(), Some(c))
                }
                other => return Err(format!("{other} is not a variant of `{name}`")),
            };
            let Some((index, _, kind)) = variants.iter().find(|(_, n, _)| n == variant) else {
                return Err(format!("`{name}` has no variant `{variant}`"));
            };
            varint(u128::from(*index), out);
            match (kind, content) {
                (Variant::Unit, None) => {}
                (Variant::NewType(inner), Some(c)) => write(inner, c, enclosing, out)?,
                (Variant::Tuple(items), Some(c)) => write_items(items, c, enclosing, out)?,
                (Variant::Struct(fields), Some(c)) => {
                    write_fields(variant, fields, c, enclosing, out)?;
                }
                _ => return Err(format!("{value} does not fit variant `{variant}`")),
            }
        }
        Shape::Recursive(name) => {
            let target = resolve(name, enclosing)?;
            write(target, value, enclosing, out)?;
        }
        _ => return Err("a shape this tool doesn't know".into()),
    }
    Ok(())
}

fn write_items<'s>(
    items: &'s [Shape],
    value: &Value,
    enclosing: &mut Vec<&'s Shape>,
    out: &mut Vec<u8>,
) -> Result<(), Misfit> {
    let values = array(value, "a tuple")?;
    if values.len() != items.len() {
        return Err(format!("{value} does not have {} items", items.len()));
    }
    for (s, v) in items.iter().zip(values) {
        write(s, v, enclosing, out)?;
    }
    Ok(())
}

fn write_fields<'s>(
    name: &str,
    fields: &'s [(String, Shape)],
    value: &Value,
    enclosing: &mut Vec<&'s Shape>,
    out: &mut Vec<u8>,
) -> Result<(), Misfit> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("{value} is not an object (`{name}`)"))?;
    if let Some(extra) = map.keys().find(|k| !fields.iter().any(|(f, _)| f == *k)) {
        return Err(format!("`{name}` has no field `{extra}`"));
    }
    for (field, shape) in fields {
        let v = map
            .get(field)
            .ok_or_else(|| format!("`{name}` needs field `{field}`"))?;
        write(shape, v, enclosing, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(shape: &Shape, bytes: &[u8]) -> Value {
        let value = decode(shape, bytes).unwrap();
        assert_eq!(encode(shape, &value).unwrap(), bytes, "{value}");
        value
    }

    #[test]
    fn integers_read_as_postcard_writes_them() {
        assert_eq!(round_trip(&Shape::U32, &[0xac, 0x02]), json!(300));
        // zigzag: -3 is 5
        assert_eq!(round_trip(&Shape::I64, &[5]), json!(-3));
        assert_eq!(round_trip(&Shape::I8, &[0xff]), json!(-1));
        let big = u128::MAX;
        let mut bytes = Vec::new();
        varint(big, &mut bytes);
        assert_eq!(round_trip(&Shape::U128, &bytes), json!(big.to_string()));
        assert!(decode(&Shape::U8, &[1, 2]).is_err());
        assert!(decode(&Shape::U16, &[0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn floats_keep_their_exact_value() {
        let bytes = 0.1f32.to_le_bytes();
        assert_eq!(round_trip(&Shape::F32, &bytes), json!(0.1));
        let nan = f64::NAN.to_le_bytes();
        assert_eq!(decode(&Shape::F64, &nan).unwrap(), json!("NaN"));
        let third = (1.0f64 / 3.0).to_le_bytes();
        round_trip(&Shape::F64, &third);
    }

    #[test]
    fn structs_enums_and_maps_read_by_name() {
        let shape = Shape::Struct(
            "Doc".into(),
            vec![
                ("title".into(), Shape::Str),
                ("tags".into(), Shape::Seq(Box::new(Shape::Str))),
                (
                    "kind".into(),
                    Shape::Enum(
                        "Kind".into(),
                        vec![
                            (0, "Plain".into(), Variant::Unit),
                            (1, "Scored".into(), Variant::NewType(Shape::F64)),
                        ],
                    ),
                ),
                (
                    "by_id".into(),
                    Shape::Map(Box::new(Shape::U8), Box::new(Shape::Bool)),
                ),
            ],
        );
        let value =
            json!({"title": "a", "tags": ["x"], "kind": {"Scored": 2.5}, "by_id": [[1, true]]});
        let bytes = encode(&shape, &value).unwrap();
        assert_eq!(round_trip(&shape, &bytes), value);
        let plain = json!({"title": "", "tags": [], "kind": "Plain", "by_id": []});
        assert_eq!(
            decode(&shape, &encode(&shape, &plain).unwrap()).unwrap(),
            plain
        );
        assert!(encode(&shape, &json!({"title": "a"})).is_err());
    }

    #[test]
    fn a_recursive_type_reads_through_its_enclosing_container() {
        // enum List { Cons(u8, Box<List>), Nil }
        let list = Shape::Enum(
            "List".into(),
            vec![
                (
                    0,
                    "Cons".into(),
                    Variant::Tuple(vec![Shape::U8, Shape::Recursive("List".into())]),
                ),
                (1, "Nil".into(), Variant::Unit),
            ],
        );
        let value = round_trip(&list, &[0, 7, 0, 8, 1]);
        assert_eq!(value, json!({"Cons": [7, {"Cons": [8, "Nil"]}]}));
        // A value nested past the bound is refused, not followed.
        let deep: Vec<u8> = std::iter::repeat_n([0, 1], 1000)
            .flatten()
            .chain([1])
            .collect();
        assert!(decode(&list, &deep).is_err());
    }

    #[test]
    fn damaged_bytes_are_misfits_never_panics() {
        let shape = Shape::Seq(Box::new(Shape::Str));
        for bytes in [
            &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
            &[2, 1, b'a'],
            &[1, 2, 0xff, 0xfe],
        ] {
            assert!(decode(&shape, bytes).is_err());
        }
    }
}
