//! What type a value was written as: a structural description traced from the type's serde
//! impl (`trace.rs`), and a short tag of it stored in front of each value in dicts of format
//! 2, so that a read through another type is an error and never a different value.
//!
//! The description is what the value's `Deserialize` asks of a format: primitives, options,
//! sequences, maps, tuples, and structs and enums with their names, fields and variants. It
//! is traced without a value. Types whose `Deserialize` can't be traced that way (one that
//! asks for `deserialize_any`, like `serde_json::Value` or an untagged enum; one that refuses
//! the tracer's sample values, like a date parsed from a string; one that holds itself with
//! nothing optional between) get no description: their values are written with [`UNTYPED`]
//! and read unchecked.
//!
//! `serde-reflection` traces the same way, but follows an enum's first variant into itself
//! until the stack overflows, which aborts the process; the tracer here cuts recursion.

use std::collections::HashMap;
use std::fmt;
use std::sync::{PoisonError, RwLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::Codec;

mod evolve;
mod trace;
use trace::trace;

/// The tag in front of a value: the first bytes of a digest of its type's description.
pub(crate) type Tag = [u8; TAG_LEN];

/// Bytes of the tag in front of every value of a typed dict.
pub(crate) const TAG_LEN: usize = 8;

/// The tag of a value whose type has no description; such values are read unchecked.
pub(crate) const UNTYPED: Tag = [0; TAG_LEN];

/// `bytes` in lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        // Writing to a `String` can't fail.
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// A type's structure, as its serde impl presents it (`docs/format.md`, "Value"). Containers
/// are written out where they occur; one that occurs inside itself is a [`Shape::Recursive`]
/// there. The variants' order is part of the format: new ones go at the end.
///
/// Each dict of format 2 stores the shape of every type its values were written as, so that
/// a tool can read postcard values without the program's types (see
/// [`inspect`](crate::inspect)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Shape {
    /// `()`.
    Unit,
    /// `bool`.
    Bool,
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `i128`.
    I128,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `u128`.
    U128,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// A string.
    Str,
    /// A byte string (`serde_bytes`).
    Bytes,
    /// `Option<T>`.
    Option(Box<Shape>),
    /// A sequence (`Vec<T>`, sets).
    Seq(Box<Shape>),
    /// A map, with its key and value shapes.
    Map(Box<Shape>, Box<Shape>),
    /// A tuple or an array.
    Tuple(Vec<Shape>),
    /// A unit struct, by name.
    UnitStruct(String),
    /// A newtype struct: name and content.
    NewType(String, Box<Shape>),
    /// A tuple struct: name and fields.
    TupleStruct(String, Vec<Shape>),
    /// A struct: name, and fields by name.
    Struct(String, Vec<(String, Shape)>),
    /// An enum: name, and variants with their index and name.
    Enum(String, Vec<(u32, String, Variant)>),
    /// A container inside itself, by name: the nearest enclosing one of that name.
    Recursive(String),
}

/// One enum variant's content; see [`Shape::Enum`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Variant {
    /// A unit variant.
    Unit,
    /// A newtype variant.
    NewType(Shape),
    /// A tuple variant.
    Tuple(Vec<Shape>),
    /// A struct variant, with fields by name.
    Struct(Vec<(String, Shape)>),
}

/// A type as values are written with it: its tag, and its shape when it has one.
#[derive(Debug, Clone)]
pub(crate) struct Described {
    pub(crate) tag: Tag,
    pub(crate) shape: Option<Shape>,
    /// The Rust type's name, for messages about a type without a shape.
    pub(crate) type_name: &'static str,
}

impl Described {
    /// Traces `T`.
    pub(crate) fn of<T: DeserializeOwned>() -> Self {
        let type_name = std::any::type_name::<T>();
        let shape = trace::<T>();
        if shape.is_none() {
            tracing::debug!(
                type_name,
                "the type's serde impl can't be traced; its values are stored unchecked"
            );
        }
        let tag = shape.as_ref().map_or(UNTYPED, Shape::tag);
        Described {
            tag,
            shape,
            type_name,
        }
    }

    /// `T` unchecked: values written under a self-describing codec carry no type.
    pub(crate) fn unchecked<T>() -> Self {
        Described {
            tag: UNTYPED,
            shape: None,
            type_name: std::any::type_name::<T>(),
        }
    }

    /// `T` under `codec`: traced, unless the codec's encoding describes itself.
    pub(crate) fn for_codec<T: DeserializeOwned>(codec: &impl Codec) -> Self {
        if codec.self_describing() {
            Self::unchecked::<T>()
        } else {
            Self::of::<T>()
        }
    }

    /// The tag and stored shape to record for this type, if it has a shape.
    pub(crate) fn record(&self) -> Option<(Tag, Vec<u8>)> {
        self.shape
            .as_ref()
            .map(|shape| (self.tag, shape.to_bytes()))
    }

    /// How the type reads in messages: its shape, or its Rust name.
    pub(crate) fn show(&self) -> String {
        self.shape
            .as_ref()
            .map_or_else(|| self.type_name.to_owned(), Shape::to_string)
    }

    /// Whether values written with `stored` can be read as this type: the same shape, or
    /// one that differs only in enum variants this type added (postcard and bincode write a
    /// variant by its index, so an old value still means what it meant).
    pub(crate) fn reads(&self, stored: &Shape) -> bool {
        self.shape
            .as_ref()
            .is_some_and(|shape| readable_as(stored, shape))
    }
}

impl Shape {
    /// The tag of values written with this shape.
    pub(crate) fn tag(&self) -> Tag {
        let bytes = self.to_bytes();
        let digest = blake3::hash(&bytes);
        let mut tag = UNTYPED;
        tag.copy_from_slice(&digest.as_bytes()[..TAG_LEN]);
        // A digest that starts with eight zero bytes would read as "untyped"; no real shape
        // has one in practice, and this keeps the two apart regardless.
        if tag == UNTYPED {
            tag[0] = 1;
        }
        tag
    }

    /// The shape as it is stored beside a dict's values.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        // A shape is plain data: postcard encodes it without fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// A stored shape, or `None` for bytes that aren't one.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        postcard::from_bytes(bytes).ok()
    }
}

/// Whether a value written as `stored` reads as `requested` with the same meaning: equal
/// shapes, except that `requested`'s enums may have variants `stored`'s lack.
fn readable_as(stored: &Shape, requested: &Shape) -> bool {
    let each = |a: &[Shape], b: &[Shape]| {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| readable_as(a, b))
    };
    let fields = |a: &[(String, Shape)], b: &[(String, Shape)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((na, a), (nb, b))| na == nb && readable_as(a, b))
    };
    match (stored, requested) {
        (Shape::Option(a), Shape::Option(b)) | (Shape::Seq(a), Shape::Seq(b)) => readable_as(a, b),
        (Shape::Map(ka, va), Shape::Map(kb, vb)) => readable_as(ka, kb) && readable_as(va, vb),
        (Shape::Tuple(a), Shape::Tuple(b)) => each(a, b),
        (Shape::NewType(na, a), Shape::NewType(nb, b)) => na == nb && readable_as(a, b),
        (Shape::TupleStruct(na, a), Shape::TupleStruct(nb, b)) => na == nb && each(a, b),
        (Shape::Struct(na, a), Shape::Struct(nb, b)) => na == nb && fields(a, b),
        (Shape::Enum(na, a), Shape::Enum(nb, b)) => {
            na == nb
                && a.iter().all(|(index, name, content)| {
                    b.iter().any(|(i, n, c)| {
                        i == index
                            && n == name
                            && match (content, c) {
                                (Variant::Unit, Variant::Unit) => true,
                                (Variant::NewType(x), Variant::NewType(y)) => readable_as(x, y),
                                (Variant::Tuple(x), Variant::Tuple(y)) => each(x, y),
                                (Variant::Struct(x), Variant::Struct(y)) => fields(x, y),
                                _ => false,
                            }
                    })
                })
        }
        (a, b) => a == b,
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T>(
            f: &mut fmt::Formatter<'_>,
            open: &str,
            items: &[T],
            close: &str,
            mut item: impl FnMut(&mut fmt::Formatter<'_>, &T) -> fmt::Result,
        ) -> fmt::Result {
            f.write_str(open)?;
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                item(f, x)?;
            }
            f.write_str(close)
        }
        let field = |f: &mut fmt::Formatter<'_>, (name, shape): &(String, Shape)| {
            write!(f, "{name}: {shape}")
        };
        let shape = |f: &mut fmt::Formatter<'_>, shape: &Shape| write!(f, "{shape}");
        match self {
            Shape::Unit => f.write_str("()"),
            Shape::Bool => f.write_str("bool"),
            Shape::I8 => f.write_str("i8"),
            Shape::I16 => f.write_str("i16"),
            Shape::I32 => f.write_str("i32"),
            Shape::I64 => f.write_str("i64"),
            Shape::I128 => f.write_str("i128"),
            Shape::U8 => f.write_str("u8"),
            Shape::U16 => f.write_str("u16"),
            Shape::U32 => f.write_str("u32"),
            Shape::U64 => f.write_str("u64"),
            Shape::U128 => f.write_str("u128"),
            Shape::F32 => f.write_str("f32"),
            Shape::F64 => f.write_str("f64"),
            Shape::Char => f.write_str("char"),
            Shape::Str => f.write_str("string"),
            Shape::Bytes => f.write_str("bytes"),
            Shape::Option(inner) => write!(f, "Option<{inner}>"),
            Shape::Seq(inner) => write!(f, "[{inner}]"),
            Shape::Map(key, value) => write!(f, "Map<{key}, {value}>"),
            Shape::Tuple(items) => list(f, "(", items, ")", shape),
            Shape::UnitStruct(name) | Shape::Recursive(name) => f.write_str(name),
            Shape::NewType(name, inner) => write!(f, "{name}({inner})"),
            Shape::TupleStruct(name, items) => {
                f.write_str(name)?;
                list(f, "(", items, ")", shape)
            }
            Shape::Struct(name, fields) => {
                f.write_str(name)?;
                list(f, " { ", fields, " }", field)
            }
            Shape::Enum(name, variants) => {
                f.write_str(name)?;
                list(f, " { ", variants, " }", |f, (_, name, content)| {
                    f.write_str(name)?;
                    match content {
                        Variant::Unit => Ok(()),
                        Variant::NewType(inner) => write!(f, "({inner})"),
                        Variant::Tuple(items) => list(f, "(", items, ")", shape),
                        Variant::Struct(fields) => list(f, " { ", fields, " }", field),
                    }
                })
            }
        }
    }
}

/// What a handle knows of the value types recorded in its dict, to judge the tag in front of
/// each value it reads.
#[derive(Debug, Default)]
pub(crate) struct TypeTable {
    /// Stored shapes by tag (`None`: bytes that are no shape of ours).
    stored: RwLock<HashMap<Tag, Option<Shape>>>,
    /// Whether values of the stored type (second) read as the requested type (first).
    reads: RwLock<HashMap<(Tag, Tag), bool>>,
}

/// A value whose tag names a type the reader can't read it as.
#[derive(Debug)]
pub(crate) struct Mismatch {
    /// How the stored type shows, or `None` if this handle doesn't know it (it was recorded
    /// after the handle opened).
    pub(crate) stored: Option<String>,
    pub(crate) tag: Tag,
    pub(crate) requested: String,
}

impl Mismatch {
    /// How the stored type shows in a message.
    pub(crate) fn stored(&self) -> String {
        self.stored.clone().unwrap_or_else(|| {
            format!(
                "a type recorded after this handle opened (tag {})",
                hex(&self.tag)
            )
        })
    }
}

impl TypeTable {
    /// A value that [`check`](Self::check) refused, read as `T` through the shape it was
    /// written as: structs by field name, enum variants by name, primitives only as
    /// themselves (see `evolve.rs`). For values the postcard codec wrote; `None` if the
    /// shape is unknown or the value doesn't fit `T`.
    pub(crate) fn evolve<T: DeserializeOwned>(&self, bytes: &[u8]) -> Option<T> {
        let (tag, rest) = bytes.split_first_chunk::<TAG_LEN>()?;
        let stored = self
            .stored
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tag)?
            .clone()?;
        evolve::read_as(rest, &stored)
    }

    /// The table of the `(tag, shape)` pairs a dict has recorded.
    pub(crate) fn new(recorded: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        let stored = recorded
            .into_iter()
            .filter_map(|(tag, shape)| Some((Tag::try_from(tag).ok()?, Shape::from_bytes(&shape))))
            .collect();
        TypeTable {
            stored: RwLock::new(stored),
            reads: RwLock::default(),
        }
    }

    /// Adds a type recorded by this handle.
    pub(crate) fn learn(&self, described: &Described) {
        if let Some(shape) = &described.shape {
            self.stored
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(described.tag)
                .or_insert_with(|| Some(shape.clone()));
        }
    }

    /// The codec's bytes of a stored value (what follows its tag), if `reader` can read it.
    /// A value tagged [`UNTYPED`], or read as a type without a shape, is not checked.
    pub(crate) fn check<'b>(
        &self,
        reader: &Described,
        bytes: &'b [u8],
    ) -> std::result::Result<&'b [u8], Mismatch> {
        let Some((tag, rest)) = bytes.split_first_chunk::<TAG_LEN>() else {
            // Too short to hold a tag: no value of ours. Left to the codec, which fails.
            return Ok(bytes);
        };
        if *tag == reader.tag || *tag == UNTYPED || reader.tag == UNTYPED {
            return Ok(rest);
        }
        let pair = (reader.tag, *tag);
        let known = self
            .reads
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&pair)
            .copied();
        let reads = known.unwrap_or_else(|| {
            let stored = self.stored.read().unwrap_or_else(PoisonError::into_inner);
            let reads = stored
                .get(tag)
                .and_then(Option::as_ref)
                .is_some_and(|shape| reader.reads(shape));
            // A tag not recorded yet is judged again once it is.
            if stored.contains_key(tag) {
                self.reads
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(pair, reads);
            }
            reads
        });
        if reads {
            return Ok(rest);
        }
        let stored = self
            .stored
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tag)
            .map(|shape| {
                shape.as_ref().map_or_else(
                    || "an unreadable type description".to_owned(),
                    Shape::to_string,
                )
            });
        Err(Mismatch {
            stored,
            tag: *tag,
            requested: reader.show(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Point {
        x: i32,
        y: Option<String>,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum Old {
        A,
        B(u8),
    }

    #[derive(Deserialize)]
    #[serde(rename = "Old")]
    #[allow(dead_code)]
    enum New {
        A,
        B(u8),
        C { c: bool },
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Tree {
        children: Vec<Tree>,
    }

    #[test]
    fn a_struct_is_described_by_its_fields() {
        let d = Described::of::<Point>();
        assert_eq!(d.show(), "Point { x: i32, y: Option<string> }");
        assert_ne!(d.tag, UNTYPED);
    }

    #[test]
    fn signed_and_unsigned_integers_differ() {
        let (i, u) = (Described::of::<i32>(), Described::of::<u32>());
        assert_ne!(i.tag, u.tag);
        assert!(!u.reads(i.shape.as_ref().unwrap()));
    }

    #[test]
    fn an_enum_with_added_variants_reads_the_old_values() {
        let (old, new) = (Described::of::<Old>(), Described::of::<New>());
        assert_ne!(old.tag, new.tag);
        assert!(new.reads(old.shape.as_ref().unwrap()));
        assert!(!old.reads(new.shape.as_ref().unwrap()));
    }

    #[test]
    fn a_recursive_type_is_described() {
        assert_eq!(Described::of::<Tree>().show(), "Tree { children: [Tree] }");
        let map = Described::of::<HashMap<String, Vec<f64>>>();
        assert_eq!(map.show(), "Map<string, [f64]>");
    }

    #[test]
    fn shapes_are_stored_by_the_variant_indices_the_format_documents() {
        let index = |shape: Shape| shape.to_bytes()[0];
        assert_eq!(index(Shape::Unit), 0);
        assert_eq!(index(Shape::U32), 9);
        assert_eq!(index(Shape::Bytes), 16);
        assert_eq!(index(Shape::Option(Box::new(Shape::Unit))), 17);
        assert_eq!(index(Shape::Struct(String::new(), Vec::new())), 24);
        assert_eq!(index(Shape::Recursive(String::new())), 26);
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum List {
        Cons(u8, Box<List>),
        Nil,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Endless {
        next: Box<Endless>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Untagged {
        A(u8),
        B(String),
    }

    #[test]
    fn an_enum_whose_first_variant_recurses_is_described_without_overflowing() {
        assert_eq!(
            Described::of::<List>().show(),
            "List { Cons(u8, List), Nil }"
        );
    }

    #[test]
    fn a_type_that_cannot_be_traced_is_untyped_and_shown_by_name() {
        for described in [Described::of::<Endless>(), Described::of::<Untagged>()] {
            assert_eq!(described.tag, UNTYPED);
            assert!(
                described.show().ends_with("Endless") || described.show().ends_with("Untagged")
            );
        }
    }

    #[test]
    fn types_that_validate_their_values_are_traced_with_a_sample_they_accept() {
        assert_eq!(Described::of::<std::num::NonZeroU32>().show(), "u32");
        assert_eq!(
            Described::of::<std::time::Duration>().show(),
            "Duration { secs: u64, nanos: u32 }"
        );
    }

    mod old {
        use serde::{Deserialize, Serialize};

        #[derive(Serialize, Deserialize)]
        pub(super) enum Node {
            Leaf(u16),
            Branch { left: Box<Node>, right: Box<Node> },
        }

        #[derive(Serialize, Deserialize)]
        pub(super) struct Doc {
            pub(super) id: u64,
            pub(super) tags: Vec<String>,
            pub(super) tree: Node,
        }
    }

    mod new {
        use serde::Deserialize;

        #[derive(Deserialize, Debug, PartialEq)]
        pub(super) enum Node {
            Branch {
                right: Box<Node>,
                left: Box<Node>,
                #[serde(default)]
                weight: i8,
            },
            Leaf(u16),
        }

        #[derive(Deserialize, Debug, PartialEq)]
        pub(super) struct Doc {
            pub(super) tree: Node,
            pub(super) id: u64,
            #[serde(default)]
            pub(super) title: Option<String>,
        }

        #[derive(Deserialize, Debug)]
        #[serde(rename = "Doc")]
        #[allow(dead_code)]
        pub(super) struct Narrower {
            pub(super) id: u32,
        }
    }

    fn evolved<T: DeserializeOwned>(bytes: &[u8], stored: &Described) -> Option<T> {
        let table = TypeTable::new(vec![(
            stored.tag.to_vec(),
            stored.shape.as_ref().unwrap().to_bytes(),
        )]);
        let tagged = [&stored.tag[..], bytes].concat();
        table.evolve::<T>(&tagged)
    }

    #[test]
    fn a_value_evolves_by_field_and_variant_name_with_serde_defaults() {
        let doc = old::Doc {
            id: 7,
            tags: vec!["a".into()],
            tree: old::Node::Branch {
                left: Box::new(old::Node::Leaf(1)),
                right: Box::new(old::Node::Leaf(300)),
            },
        };
        let bytes = postcard::to_stdvec(&doc).unwrap();
        let stored = Described::of::<old::Doc>();
        let read: new::Doc = evolved(&bytes, &stored).unwrap();
        assert_eq!(
            read,
            new::Doc {
                tree: new::Node::Branch {
                    right: Box::new(new::Node::Leaf(300)),
                    left: Box::new(new::Node::Leaf(1)),
                    weight: 0,
                },
                id: 7,
                title: None,
            }
        );
        // A number is only read as its own type.
        assert!(evolved::<new::Narrower>(&bytes, &stored).is_none());
    }

    #[test]
    fn bytes_that_do_not_fit_the_stored_shape_evolve_into_nothing() {
        let stored = Described::of::<old::Doc>();
        for bytes in [&[][..], &[0xff; 40][..], &[7, 1, 200, 200, 200][..]] {
            assert!(evolved::<new::Doc>(bytes, &stored).is_none());
        }
        let mut bytes = postcard::to_stdvec(&(7_u64, vec!["a"], 0_u8, 1_u16)).unwrap();
        bytes.push(0);
        assert!(
            evolved::<new::Doc>(&bytes, &stored).is_none(),
            "bytes left over"
        );
    }

    #[test]
    fn a_shape_survives_its_stored_bytes() {
        let shape = Described::of::<Point>().shape.unwrap();
        assert_eq!(Shape::from_bytes(&shape.to_bytes()), Some(shape));
    }
}
