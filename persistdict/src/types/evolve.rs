//! Reading a postcard value written as one shape into a type of another, by name: the stored
//! shape says what the bytes hold (postcard alone does not), and the value is handed to the
//! new type's `Deserialize` as a self-describing format would hand it: structs as maps of
//! field names, enum variants by name. So a field added with `#[serde(default)]` (in a
//! nested struct too) gets its default, a removed field is skipped, and reordered fields and
//! variants keep their meaning.
//!
//! Primitives are strict: a `u32` is read only as a `u32`, never as an `i32` or a `u64`, so
//! a value is never read as another number. Whatever doesn't fit is an error, and the caller
//! reports the type change.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::{Shape, Variant};

/// `bytes`, written by postcard as a value of shape `stored`, read as a `T`; `None` if they
/// don't parse as that shape or `T` can't take the value.
pub(super) fn read_as<T: DeserializeOwned>(bytes: &[u8], stored: &Shape) -> Option<T> {
    let mut parser = Parser {
        bytes,
        inside: Vec::new(),
    };
    let value = parser.value(stored)?;
    if !parser.bytes.is_empty() {
        return None;
    }
    T::deserialize(&value).ok()
}

/// A value as its stored shape describes it.
#[derive(Debug)]
enum Val {
    Unit,
    Bool(bool),
    /// A signed integer, with its primitive shape.
    Signed(Shape, i128),
    Unsigned(Shape, u128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(String),
    Bytes(Vec<u8>),
    Option(Option<Box<Val>>),
    Seq(Vec<Val>),
    Map(Vec<(Val, Val)>),
    Tuple(Vec<Val>),
    NewType(Box<Val>),
    /// Fields as (name, value) pairs, names as [`Val::Str`]: read as a map, as a
    /// self-describing format presents a struct.
    Struct(Vec<(Val, Val)>),
    Enum(String, Box<VariantVal>),
}

#[derive(Debug)]
enum VariantVal {
    Unit,
    NewType(Val),
    Tuple(Vec<Val>),
    Struct(Vec<(Val, Val)>),
}

/// Postcard's encoding, read as a shape says.
struct Parser<'b, 's> {
    bytes: &'b [u8],
    /// The containers being read, for [`Shape::Recursive`].
    inside: Vec<&'s Shape>,
}

impl<'s> Parser<'_, 's> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A LEB128 varint of at most `bits`.
    fn varint(&mut self, bits: u32) -> Option<u128> {
        let mut out = 0_u128;
        for shift in (0..bits + 7).step_by(7) {
            let byte = self.byte()?;
            out |= u128::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return (bits == 128 || out >> bits == 0).then_some(out);
            }
        }
        None
    }

    fn zigzag(&mut self, bits: u32) -> Option<i128> {
        let n = self.varint(bits)?;
        Some((n >> 1).cast_signed() ^ -(n & 1).cast_signed())
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.varint(64)?).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn all(&mut self, shapes: &'s [Shape]) -> Option<Vec<Val>> {
        shapes.iter().map(|s| self.value(s)).collect()
    }

    fn fields(&mut self, fields: &'s [(String, Shape)]) -> Option<Vec<(Val, Val)>> {
        fields
            .iter()
            .map(|(name, s)| Some((Val::Str(name.clone()), self.value(s)?)))
            .collect()
    }

    fn value(&mut self, shape: &'s Shape) -> Option<Val> {
        Some(match shape {
            Shape::Unit | Shape::UnitStruct(_) => Val::Unit,
            Shape::Bool => match self.byte()? {
                0 => Val::Bool(false),
                1 => Val::Bool(true),
                _ => return None,
            },
            Shape::I8 => Val::Signed(Shape::I8, i128::from(self.byte()?.cast_signed())),
            Shape::U8 => Val::Unsigned(Shape::U8, u128::from(self.byte()?)),
            Shape::I16 => Val::Signed(Shape::I16, self.zigzag(16)?),
            Shape::I32 => Val::Signed(Shape::I32, self.zigzag(32)?),
            Shape::I64 => Val::Signed(Shape::I64, self.zigzag(64)?),
            Shape::I128 => Val::Signed(Shape::I128, self.zigzag(128)?),
            Shape::U16 => Val::Unsigned(Shape::U16, self.varint(16)?),
            Shape::U32 => Val::Unsigned(Shape::U32, self.varint(32)?),
            Shape::U64 => Val::Unsigned(Shape::U64, self.varint(64)?),
            Shape::U128 => Val::Unsigned(Shape::U128, self.varint(128)?),
            Shape::F32 => Val::F32(f32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            Shape::F64 => Val::F64(f64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            Shape::Char => {
                let text = self.string()?;
                let mut chars = text.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                Val::Char(c)
            }
            Shape::Str => Val::Str(self.string()?),
            Shape::Bytes => {
                let len = self.len()?;
                Val::Bytes(self.take(len)?.to_vec())
            }
            Shape::Option(inner) => match self.byte()? {
                0 => Val::Option(None),
                1 => Val::Option(Some(Box::new(self.value(inner)?))),
                _ => return None,
            },
            Shape::Seq(inner) => {
                let len = self.len()?;
                // Each element takes a byte at least: a length past the bytes is no value.
                if len > self.bytes.len() && !matches!(**inner, Shape::Unit) {
                    return None;
                }
                Val::Seq((0..len).map(|_| self.value(inner)).collect::<Option<_>>()?)
            }
            Shape::Map(key, value) => {
                let len = self.len()?;
                if len > self.bytes.len() {
                    return None;
                }
                Val::Map(
                    (0..len)
                        .map(|_| Some((self.value(key)?, self.value(value)?)))
                        .collect::<Option<_>>()?,
                )
            }
            Shape::Tuple(items) => Val::Tuple(self.all(items)?),
            Shape::NewType(_, inner) => {
                Val::NewType(Box::new(self.within(shape, |p| p.value(inner))?))
            }
            Shape::TupleStruct(_, items) => Val::Tuple(self.within(shape, |p| p.all(items))?),
            Shape::Struct(_, fields) => Val::Struct(self.within(shape, |p| p.fields(fields))?),
            Shape::Enum(_, variants) => {
                let index = u32::try_from(self.varint(32)?).ok()?;
                let (_, name, variant) = variants.iter().find(|(i, _, _)| *i == index)?;
                let content = self.within(shape, |p| {
                    Some(match variant {
                        Variant::Unit => VariantVal::Unit,
                        Variant::NewType(inner) => VariantVal::NewType(p.value(inner)?),
                        Variant::Tuple(items) => VariantVal::Tuple(p.all(items)?),
                        Variant::Struct(fields) => VariantVal::Struct(p.fields(fields)?),
                    })
                })?;
                Val::Enum(name.clone(), Box::new(content))
            }
            Shape::Recursive(name) => {
                let outer = self
                    .inside
                    .iter()
                    .rev()
                    .find(|s| container_name(s) == Some(name.as_str()))?;
                return self.value(outer);
            }
        })
    }

    /// Runs `f` inside container `shape`.
    fn within<R>(&mut self, shape: &'s Shape, f: impl FnOnce(&mut Self) -> Option<R>) -> Option<R> {
        // Nesting is bounded by the bytes: each level of a recursive type takes one at least.
        if self.inside.len() > 256 {
            return None;
        }
        self.inside.push(shape);
        let out = f(self);
        self.inside.pop();
        out
    }
}

fn container_name(shape: &Shape) -> Option<&str> {
    match shape {
        Shape::UnitStruct(name)
        | Shape::NewType(name, _)
        | Shape::TupleStruct(name, _)
        | Shape::Struct(name, _)
        | Shape::Enum(name, _) => Some(name),
        _ => None,
    }
}

/// Why a stored value does not fit the type asked for.
#[derive(Debug)]
struct Misfit(String);

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Misfit {}

impl de::Error for Misfit {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Misfit(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Misfit>;

fn misfit<T>(wanted: &str) -> Result<T> {
    Err(Misfit(format!("the stored value is not {wanted}")))
}

/// Asks of an integer that it was stored as exactly `$shape`.
macro_rules! integers {
    ($($method:ident => $variant:ident($shape:ident) $visit:ident as $ty:ty;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                match self {
                    Val::$variant(Shape::$shape, n) => {
                        visitor.$visit(<$ty>::try_from(*n).map_err(de::Error::custom)?)
                    }
                    _ => misfit(stringify!($shape)),
                }
            }
        )*
    };
}

/// Asks of a scalar that it was stored as exactly `$variant`.
macro_rules! scalars {
    ($($method:ident => $variant:ident $visit:ident;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                match self {
                    Val::$variant(x) => visitor.$visit(*x),
                    _ => misfit(stringify!($variant)),
                }
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for &Val {
    type Error = Misfit;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Unit => visitor.visit_unit(),
            Val::Bool(b) => visitor.visit_bool(*b),
            Val::Signed(_, n) => visitor.visit_i128(*n),
            Val::Unsigned(_, n) => visitor.visit_u128(*n),
            Val::F32(x) => visitor.visit_f32(*x),
            Val::F64(x) => visitor.visit_f64(*x),
            Val::Char(c) => visitor.visit_char(*c),
            Val::Str(s) => visitor.visit_str(s),
            Val::Bytes(b) => visitor.visit_bytes(b),
            Val::Option(None) => visitor.visit_none(),
            Val::Option(Some(inner)) => visitor.visit_some(&**inner),
            Val::Seq(items) | Val::Tuple(items) => visitor.visit_seq(Items(items.iter())),
            Val::Map(entries) | Val::Struct(entries) => visitor.visit_map(Entries::new(entries)),
            Val::NewType(inner) => visitor.visit_newtype_struct(&**inner),
            Val::Enum(..) => visitor.visit_enum(self),
        }
    }

    integers! {
        deserialize_i8 => Signed(I8) visit_i8 as i8;
        deserialize_i16 => Signed(I16) visit_i16 as i16;
        deserialize_i32 => Signed(I32) visit_i32 as i32;
        deserialize_i64 => Signed(I64) visit_i64 as i64;
        deserialize_i128 => Signed(I128) visit_i128 as i128;
        deserialize_u8 => Unsigned(U8) visit_u8 as u8;
        deserialize_u16 => Unsigned(U16) visit_u16 as u16;
        deserialize_u32 => Unsigned(U32) visit_u32 as u32;
        deserialize_u64 => Unsigned(U64) visit_u64 as u64;
        deserialize_u128 => Unsigned(U128) visit_u128 as u128;
    }

    scalars! {
        deserialize_bool => Bool visit_bool;
        deserialize_f32 => F32 visit_f32;
        deserialize_f64 => F64 visit_f64;
        deserialize_char => Char visit_char;
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Str(s) => visitor.visit_str(s),
            _ => misfit("a string"),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Bytes(b) => visitor.visit_bytes(b),
            _ => misfit("bytes"),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Option(None) => visitor.visit_none(),
            Val::Option(Some(inner)) => visitor.visit_some(&**inner),
            _ => misfit("an option"),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Unit => visitor.visit_unit(),
            _ => misfit("()"),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Val::NewType(inner) => visitor.visit_newtype_struct(&**inner),
            _ => misfit("a newtype struct"),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Seq(items) => visitor.visit_seq(Items(items.iter())),
            _ => misfit("a sequence"),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        match self {
            Val::Tuple(items) if items.len() == len => visitor.visit_seq(Items(items.iter())),
            _ => misfit("a tuple"),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Map(entries) => visitor.visit_map(Entries::new(entries)),
            _ => misfit("a map"),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Val::Struct(fields) => visitor.visit_map(Entries::new(fields)),
            _ => misfit("a struct"),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Val::Enum(..) => visitor.visit_enum(self),
            _ => misfit("an enum"),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

struct Items<'v>(std::slice::Iter<'v, Val>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = Misfit;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'v> {
    entries: std::slice::Iter<'v, (Val, Val)>,
    value: Option<&'v Val>,
}

impl<'v> Entries<'v> {
    fn new(entries: &'v [(Val, Val)]) -> Self {
        Entries {
            entries: entries.iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Misfit;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let value = self
            .value
            .take()
            .ok_or_else(|| Misfit("a value before its key".into()))?;
        seed.deserialize(value)
    }
}

impl<'de, 'v> EnumAccess<'de> for &'v Val {
    type Error = Misfit;
    type Variant = &'v VariantVal;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self::Variant)> {
        let Val::Enum(name, content) = self else {
            return misfit("an enum");
        };
        let variant = seed.deserialize(name.as_str().into_deserializer())?;
        Ok((variant, &**content))
    }
}

impl<'de> VariantAccess<'de> for &VariantVal {
    type Error = Misfit;

    fn unit_variant(self) -> Result<()> {
        match self {
            VariantVal::Unit => Ok(()),
            _ => Err(Misfit(
                "a variant with content, asked for a unit variant".into(),
            )),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        match self {
            VariantVal::NewType(inner) => seed.deserialize(inner),
            _ => Err(Misfit("asked for a newtype variant".into())),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        match self {
            VariantVal::Tuple(items) if items.len() == len => {
                visitor.visit_seq(Items(items.iter()))
            }
            _ => Err(Misfit("asked for a tuple variant".into())),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            VariantVal::Struct(fields) => visitor.visit_map(Entries::new(fields)),
            _ => Err(Misfit("asked for a struct variant".into())),
        }
    }
}
