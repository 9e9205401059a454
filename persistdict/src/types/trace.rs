//! Tracing a type's shape through its `Deserialize` impl: a deserializer that hands the
//! impl sample values and notes what it asks for.
//!
//! One pass deserializes one value, so it sees one variant of each enum; passes repeat, each
//! taking the next unexplored variant of every enum, until all are known. Containers are
//! noted by name in a registry and put together at the end.
//!
//! Recursion is cut, never followed: a container met again inside itself is entered in
//! *cut* mode, where options are `None`, sequences and maps empty, and enums take a variant
//! not already taken on the way down (a unit variant when one is known), and nothing is
//! noted. A type that still nests deeper than [`MAX_DEPTH`] (a struct that holds itself
//! without an option or a collection between, an enum without a base case) is not traced.
//! Like any failure to trace, that leaves the type without a shape, never a crash.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use super::{Shape, Variant};

/// How deep a value may nest before the type is given up.
const MAX_DEPTH: usize = 64;

/// How many passes a type may take (one more than its largest number of enum variants).
const MAX_PASSES: usize = 256;

/// The shape of `T`, or `None` when its `Deserialize` can't be traced.
pub(super) fn trace<T: DeserializeOwned>() -> Option<Shape> {
    let mut tracer = Tracer::default();
    let mut root = None;
    for _ in 0..MAX_PASSES {
        let mut shape = None;
        T::deserialize(Tracing {
            tracer: &mut tracer,
            out: &mut shape,
        })
        .ok()?;
        root = Some(shape?);
        if !tracer.pick_unexplored() {
            break;
        }
    }
    if tracer.pick_unexplored() {
        return None;
    }
    tracer.assemble(&root?, &mut Vec::new())
}

/// A container as noted: the shape of a struct (with [`Shape::Recursive`] standing for the
/// containers inside it), or an enum's variants.
#[derive(Debug)]
enum Noted {
    Other(Shape),
    Enum {
        names: &'static [&'static str],
        variants: BTreeMap<u32, Variant>,
    },
}

#[derive(Default)]
struct Tracer {
    registry: HashMap<&'static str, Noted>,
    /// The variant each enum takes in this pass.
    pick: HashMap<&'static str, u32>,
    /// Containers being deserialized, outermost first, with the variant taken for enums.
    path: Vec<(&'static str, Option<u32>)>,
    /// Above zero while inside a container met again inside itself.
    cut: usize,
}

impl Tracer {
    /// Sets each enum with an unexplored variant to take it next; whether there was one.
    fn pick_unexplored(&mut self) -> bool {
        let mut any = false;
        for (name, noted) in &self.registry {
            if let Noted::Enum { names, variants } = noted
                && let Some(index) = (0..names.len() as u32).find(|i| !variants.contains_key(i))
            {
                self.pick.insert(name, index);
                any = true;
            }
        }
        any
    }

    /// `shape` with each container written out, as [`Shape::Recursive`] inside itself.
    fn assemble(&self, shape: &Shape, inside: &mut Vec<String>) -> Option<Shape> {
        let each = |shapes: &[Shape], inside: &mut Vec<String>| {
            shapes
                .iter()
                .map(|s| self.assemble(s, inside))
                .collect::<Option<Vec<_>>>()
        };
        let fields = |fields: &[(String, Shape)], inside: &mut Vec<String>| {
            fields
                .iter()
                .map(|(n, s)| Some((n.clone(), self.assemble(s, inside)?)))
                .collect::<Option<Vec<_>>>()
        };
        Some(match shape {
            Shape::Recursive(name) => {
                if inside.contains(name) {
                    return Some(shape.clone());
                }
                inside.push(name.clone());
                let noted = self.registry.get(name.as_str())?;
                let out = match noted {
                    Noted::Other(shape) => self.assemble(shape, inside),
                    Noted::Enum { names, variants } => {
                        let mut out = Vec::with_capacity(names.len());
                        for (index, variant) in variants {
                            let name = (*names.get(*index as usize)?).to_owned();
                            let content = match variant {
                                Variant::Unit => Variant::Unit,
                                Variant::NewType(s) => Variant::NewType(self.assemble(s, inside)?),
                                Variant::Tuple(s) => Variant::Tuple(each(s, inside)?),
                                Variant::Struct(f) => Variant::Struct(fields(f, inside)?),
                            };
                            out.push((*index, name, content));
                        }
                        Some(Shape::Enum(name.clone(), out))
                    }
                };
                inside.pop();
                out?
            }
            Shape::Option(inner) => Shape::Option(Box::new(self.assemble(inner, inside)?)),
            Shape::Seq(inner) => Shape::Seq(Box::new(self.assemble(inner, inside)?)),
            Shape::Map(key, value) => Shape::Map(
                Box::new(self.assemble(key, inside)?),
                Box::new(self.assemble(value, inside)?),
            ),
            Shape::Tuple(items) => Shape::Tuple(each(items, inside)?),
            Shape::NewType(name, inner) => {
                Shape::NewType(name.clone(), Box::new(self.assemble(inner, inside)?))
            }
            Shape::TupleStruct(name, items) => {
                Shape::TupleStruct(name.clone(), each(items, inside)?)
            }
            Shape::Struct(name, f) => Shape::Struct(name.clone(), fields(f, inside)?),
            other => other.clone(),
        })
    }

    /// Notes a struct-like container's shape, once.
    fn note(&mut self, name: &'static str, shape: Shape) {
        if self.cut == 0 {
            self.registry.entry(name).or_insert(Noted::Other(shape));
        }
    }

    /// The variant an enum takes here.
    fn choose(&self, name: &'static str, names: &'static [&'static str]) -> u32 {
        if self.cut == 0 {
            return self.pick.get(name).copied().unwrap_or(0);
        }
        let taken: Vec<u32> = self
            .path
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, v)| *v)
            .collect();
        if let Some(Noted::Enum { variants, .. }) = self.registry.get(name)
            && let Some(unit) = variants
                .iter()
                .find(|(_, v)| matches!(v, Variant::Unit))
                .map(|(i, _)| *i)
        {
            return unit;
        }
        (0..names.len() as u32)
            .find(|i| !taken.contains(i))
            .unwrap_or(0)
    }
}

/// Why a type can't be traced.
#[derive(Debug)]
struct Untraceable(String);

impl fmt::Display for Untraceable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untraceable {}

impl de::Error for Untraceable {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Untraceable(msg.to_string())
    }
}

type Result<T> = std::result::Result<T, Untraceable>;

/// The deserializer of one value: its shape goes to `out` (left `None` in cut mode).
struct Tracing<'t, 'o> {
    tracer: &'t mut Tracer,
    out: &'o mut Option<Shape>,
}

impl Tracing<'_, '_> {
    fn primitive(self, shape: Shape) {
        if self.tracer.cut == 0 {
            *self.out = Some(shape);
        }
    }

    /// Runs `f` one level deeper, inside container `name` if given (`variant` for an enum).
    fn enter<R>(
        &mut self,
        container: Option<(&'static str, Option<u32>)>,
        f: impl FnOnce(&mut Tracer) -> Result<R>,
    ) -> Result<R> {
        let tracer = &mut *self.tracer;
        if tracer.path.len() >= MAX_DEPTH {
            return Err(Untraceable("the type nests too deep".into()));
        }
        let again = container.is_some_and(|(name, _)| tracer.path.iter().any(|(n, _)| *n == name));
        if again {
            tracer.cut += 1;
        }
        tracer.path.push(container.unwrap_or(("", None)));
        let out = f(tracer);
        tracer.path.pop();
        if again {
            tracer.cut -= 1;
        }
        out
    }
}

impl<'de> Tracing<'_, '_> {
    /// A struct-like container `name` of `len` elements, noted as `shape` of their shapes.
    fn container<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        len: usize,
        visitor: V,
        shape: impl FnOnce(Vec<Shape>) -> Shape,
    ) -> Result<V::Value> {
        let (value, shapes) = self.enter(Some((name, None)), |tracer| {
            elements(tracer, len, |a| visitor.visit_seq(a))
        })?;
        if let Some(shapes) = shapes {
            self.tracer.note(name, shape(shapes));
        }
        self.primitive(Shape::Recursive(name.to_owned()));
        Ok(value)
    }
}

/// Fields by name with their shapes.
fn named(fields: &[&str], shapes: Vec<Shape>) -> Vec<(String, Shape)> {
    fields.iter().map(|f| (*f).to_owned()).zip(shapes).collect()
}

/// Deserializes one nested value with `tracer`, returning it and its shape.
fn nested<'de, S: DeserializeSeed<'de>>(
    tracer: &mut Tracer,
    seed: S,
) -> Result<(S::Value, Option<Shape>)> {
    let mut shape = None;
    let value = seed.deserialize(Tracing {
        tracer,
        out: &mut shape,
    })?;
    Ok((value, shape))
}

/// Hands out `len` elements (or entries), noting each one's shape.
struct Elements<'t> {
    tracer: &'t mut Tracer,
    left: usize,
    shapes: Vec<Option<Shape>>,
}

impl Elements<'_> {
    /// The next element (or map key), if any are left.
    fn next<'de, S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.value(seed).map(Some)
    }

    /// One nested value, its shape noted.
    fn value<'de, S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        let (value, shape) = nested(self.tracer, seed)?;
        self.shapes.push(shape);
        Ok(value)
    }
}

impl<'de> SeqAccess<'de> for Elements<'_> {
    type Error = Untraceable;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        self.next(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> MapAccess<'de> for Elements<'_> {
    type Error = Untraceable;

    fn next_key_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        self.next(seed)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        self.value(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// Runs `visit` over `len` elements; their shapes, all known, or `None` in cut mode.
fn elements<R>(
    tracer: &mut Tracer,
    len: usize,
    visit: impl FnOnce(&mut Elements<'_>) -> Result<R>,
) -> Result<(R, Option<Vec<Shape>>)> {
    let mut access = Elements {
        tracer,
        left: len,
        shapes: Vec::with_capacity(len),
    };
    let value = visit(&mut access)?;
    if access.left != 0 {
        return Err(Untraceable("fewer elements taken than offered".into()));
    }
    let shapes = if access.tracer.cut == 0 {
        Some(
            access
                .shapes
                .into_iter()
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Untraceable("an element's shape is unknown".into()))?,
        )
    } else {
        None
    };
    Ok((value, shapes))
}

macro_rules! primitives {
    ($($method:ident => $shape:ident, $visit:ident($value:expr);)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
                self.primitive(Shape::$shape);
                visitor.$visit($value)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Tracing<'_, '_> {
    type Error = Untraceable;

    primitives! {
        deserialize_bool => Bool, visit_bool(false);
        deserialize_i8 => I8, visit_i8(1);
        deserialize_i16 => I16, visit_i16(1);
        deserialize_i32 => I32, visit_i32(1);
        deserialize_i64 => I64, visit_i64(1);
        deserialize_i128 => I128, visit_i128(1);
        deserialize_u8 => U8, visit_u8(1);
        deserialize_u16 => U16, visit_u16(1);
        deserialize_u32 => U32, visit_u32(1);
        deserialize_u64 => U64, visit_u64(1);
        deserialize_u128 => U128, visit_u128(1);
        deserialize_f32 => F32, visit_f32(1.0);
        deserialize_f64 => F64, visit_f64(1.0);
        deserialize_char => Char, visit_char('a');
        deserialize_str => Str, visit_str("");
        deserialize_string => Str, visit_string(String::new());
        deserialize_bytes => Bytes, visit_bytes(&[]);
        deserialize_byte_buf => Bytes, visit_byte_buf(Vec::new());
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.primitive(Shape::Unit);
        visitor.visit_unit()
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(Untraceable(
            "the type asks what the data holds (deserialize_any)".into(),
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_u32(0)
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        if self.tracer.cut > 0 {
            return visitor.visit_none();
        }
        let (value, inner) = self.enter(None, |tracer| {
            let mut inner = None;
            let value = visitor.visit_some(Tracing {
                tracer,
                out: &mut inner,
            })?;
            Ok((value, inner))
        })?;
        let inner = inner.ok_or_else(|| Untraceable("an option's content is unknown".into()))?;
        self.primitive(Shape::Option(Box::new(inner)));
        Ok(value)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        let len = usize::from(self.tracer.cut == 0);
        let (value, shapes) = self.enter(None, |tracer| {
            elements(tracer, len, |a| visitor.visit_seq(a))
        })?;
        if let Some(mut shapes) = shapes {
            let element = shapes
                .pop()
                .ok_or_else(|| Untraceable("no element".into()))?;
            self.primitive(Shape::Seq(Box::new(element)));
        }
        Ok(value)
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
        let len = usize::from(self.tracer.cut == 0);
        let (value, shapes) = self.enter(None, |tracer| {
            elements(tracer, len, |a| visitor.visit_map(a))
        })?;
        if let Some(shapes) = shapes {
            let [key, value] = <[Shape; 2]>::try_from(shapes)
                .map_err(|_| Untraceable("a map entry's shapes are unknown".into()))?;
            self.primitive(Shape::Map(Box::new(key), Box::new(value)));
        }
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(mut self, len: usize, visitor: V) -> Result<V::Value> {
        let (value, shapes) = self.enter(None, |tracer| {
            elements(tracer, len, |a| visitor.visit_seq(a))
        })?;
        if let Some(shapes) = shapes {
            self.primitive(Shape::Tuple(shapes));
        }
        Ok(value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.tracer.note(name, Shape::UnitStruct(name.to_owned()));
        self.primitive(Shape::Recursive(name.to_owned()));
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        let (value, inner) = self.enter(Some((name, None)), |tracer| {
            let mut inner = None;
            let value = visitor.visit_newtype_struct(Tracing {
                tracer,
                out: &mut inner,
            })?;
            Ok((value, inner))
        })?;
        if let Some(inner) = inner {
            self.tracer
                .note(name, Shape::NewType(name.to_owned(), Box::new(inner)));
        }
        self.primitive(Shape::Recursive(name.to_owned()));
        Ok(value)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.container(name, len, visitor, |shapes| {
            Shape::TupleStruct(name.to_owned(), shapes)
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.container(name, fields.len(), visitor, |shapes| {
            Shape::Struct(name.to_owned(), named(fields, shapes))
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if variants.is_empty() {
            return Err(Untraceable("an enum without variants".into()));
        }
        let index = self.tracer.choose(name, variants);
        if self.tracer.cut == 0 {
            self.tracer.registry.entry(name).or_insert(Noted::Enum {
                names: variants,
                variants: BTreeMap::new(),
            });
        }
        let value = self.enter(Some((name, Some(index))), |tracer| {
            visitor.visit_enum(Choice {
                tracer,
                name,
                index,
            })
        })?;
        self.primitive(Shape::Recursive(name.to_owned()));
        Ok(value)
    }

    fn is_human_readable(&self) -> bool {
        // As postcard and bincode, the codecs whose values carry tags.
        false
    }
}

/// The variant `index` of enum `name`.
struct Choice<'t> {
    tracer: &'t mut Tracer,
    name: &'static str,
    index: u32,
}

impl<'de> EnumAccess<'de> for Choice<'_> {
    type Error = Untraceable;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self)> {
        let value = seed.deserialize(IntoDeserializer::<'de, Untraceable>::into_deserializer(
            self.index,
        ))?;
        Ok((value, self))
    }
}

impl Choice<'_> {
    fn note(self, variant: Variant) {
        if self.tracer.cut > 0 {
            return;
        }
        if let Some(Noted::Enum { variants, .. }) = self.tracer.registry.get_mut(self.name) {
            variants.entry(self.index).or_insert(variant);
        }
    }
}

impl<'de> VariantAccess<'de> for Choice<'_> {
    type Error = Untraceable;

    fn unit_variant(self) -> Result<()> {
        self.note(Variant::Unit);
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        let (value, shape) = nested(self.tracer, seed)?;
        if let Some(shape) = shape {
            self.note(Variant::NewType(shape));
        }
        Ok(value)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        let (value, shapes) = elements(self.tracer, len, |a| visitor.visit_seq(a))?;
        if let Some(shapes) = shapes {
            self.note(Variant::Tuple(shapes));
        }
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let (value, shapes) = elements(self.tracer, fields.len(), |a| visitor.visit_seq(a))?;
        if let Some(shapes) = shapes {
            self.note(Variant::Struct(named(fields, shapes)));
        }
        Ok(value)
    }
}
