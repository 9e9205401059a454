//! The models of the annotated items, keeping the original tokens for spans.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::{
    Attribute, Expr, Field, FnArg, GenericArgument, Ident, ItemStruct, LitStr, Pat, Path,
    PathArguments, Receiver, ReturnType, Signature, Type, Visibility, braced,
};

use crate::attr::{self, Durability, FieldOptions, Options};
use crate::ctxt::Ctxt;
use crate::symbol::{PATH, PERSISTENT};

/// An item attribute's options with their defaults applied: what `expand` reads.
pub(crate) struct ItemOptions {
    pub(crate) path: LitStr,
    pub(crate) expire_days: Option<u32>,
    pub(crate) name: Option<LitStr>,
    pub(crate) cache: Option<usize>,
    /// The value codec's type; the runtime's `Postcard` if `None`.
    pub(crate) codec: Option<Path>,
    pub(crate) durability: Option<Durability>,
    /// Bytes of address space for the memory map.
    pub(crate) map_size: Option<u64>,
    /// Where the runtime crate is; `::persistdict` if `None`.
    pub(crate) krate: Option<Path>,
    /// `#[persistent]` on a struct: the handle type's name, if not `<Struct>Store`.
    pub(crate) handle: Option<Ident>,
    /// `#[persistent]`: whether values that no longer decode read as missing.
    pub(crate) undecodable_as_missing: Option<bool>,
    /// `#[memoize]`: part of the namespace.
    pub(crate) version: u32,
    /// `#[memoize]`: whether the function's code is part of the namespace.
    pub(crate) invalidate_on_change: bool,
}

impl ItemOptions {
    /// The options of attribute `attr` (its name). A missing `path` is recorded in `cx` and
    /// left empty: with an error recorded, the item is never expanded.
    pub(crate) fn resolve(cx: &Ctxt, options: Options, attr: &str) -> Self {
        let path = options.path.value.unwrap_or_else(|| {
            cx.push(syn::Error::new(
                Span::call_site(),
                format!(
                    "missing `{PATH}` option; add one, like `#[{attr}({PATH} = \"data/{attr}\")]`"
                ),
            ));
            LitStr::new("", Span::call_site())
        });
        ItemOptions {
            path,
            expire_days: options.expire_days.value,
            name: options.name.value,
            cache: options.cache.value,
            codec: options.codec.value,
            durability: options.durability.value,
            map_size: options.map_size.value,
            krate: options.krate.value,
            handle: options.handle.value,
            undecodable_as_missing: options.undecodable_as_missing.value,
            version: options.version.value.unwrap_or(0),
            invalidate_on_change: options.invalidate_on_change.value.unwrap_or(true),
        }
    }
}

/// What `#[persistent]` was put on.
pub(crate) enum Persistent {
    /// A struct with named fields: one stored entry per field.
    Struct(Box<StructModel>),
    /// A map type, or a tuple struct wrapping one: a named `PersistDict`.
    Map(Box<MapModel>),
}

pub(crate) struct StructModel {
    pub(crate) options: ItemOptions,
    /// The struct as the user wrote it, minus the field attributes of ours.
    pub(crate) item: ItemStruct,
    pub(crate) fields: Vec<FieldModel>,
}

pub(crate) struct FieldModel {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    pub(crate) vis: Visibility,
    /// The name the field is stored under.
    pub(crate) key: LitStr,
    pub(crate) default: Option<Expr>,
    /// `false` for a field serde skips: it is not stored and always reads as its default.
    pub(crate) stored: bool,
    /// The functions serde encodes and decodes the field with, if not its type's own.
    pub(crate) serialize_with: Option<Path>,
    pub(crate) deserialize_with: Option<Path>,
}

pub(crate) struct MapModel {
    pub(crate) options: ItemOptions,
    /// The item's attributes (documentation, `cfg`...), kept on the generated type.
    pub(crate) attrs: Vec<syn::Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) ident: Ident,
    pub(crate) key: Type,
    pub(crate) value: Type,
    /// The map type as written.
    pub(crate) map: Type,
}

/// Map types `#[persistent]` recognizes, by the last segment of their path.
const MAP_TYPES: [&str; 3] = ["HashMap", "BTreeMap", "IndexMap"];

impl Persistent {
    /// The model of `item` with its resolved `options`, or `None` after recording why it
    /// can't have one.
    pub(crate) fn from_item(cx: &Ctxt, item: &syn::Item, options: ItemOptions) -> Option<Self> {
        let what = "`#[persistent]` goes on a struct with named fields or on a map type";
        match item {
            syn::Item::Struct(s) => {
                if !s.generics.params.is_empty() || s.generics.where_clause.is_some() {
                    cx.error(
                        &s.generics,
                        "`#[persistent]` structs can't be generic: the stored types must be known",
                    );
                    return None;
                }
                match &s.fields {
                    syn::Fields::Named(_) => Some(Persistent::Struct(Box::new(StructModel::new(
                        cx, s, options,
                    )))),
                    syn::Fields::Unnamed(fields) => {
                        let map = (fields.unnamed.len() == 1)
                            .then(|| map_types(&fields.unnamed[0].ty))
                            .flatten();
                        let Some((key, value)) = map else {
                            cx.error(
                                fields,
                                "a tuple struct with `#[persistent]` must wrap one map type, \
                                 like `struct Embeddings(HashMap<String, Vec<f32>>);`",
                            );
                            return None;
                        };
                        let map = fields.unnamed[0].ty.clone();
                        Some(Persistent::Map(Box::new(MapModel::new(
                            cx, s, key, value, map, options,
                        ))))
                    }
                    syn::Fields::Unit => {
                        cx.error(
                            &s.ident,
                            format!("{what}; a unit struct has nothing to store"),
                        );
                        None
                    }
                }
            }
            syn::Item::Type(t) => {
                if !t.generics.params.is_empty() {
                    cx.error(&t.generics, "`#[persistent]` map types can't be generic");
                    return None;
                }
                let Some((key, value)) = map_types(&t.ty) else {
                    cx.error(
                        &t.ty,
                        "expected a map type such as `HashMap<K, V>` or `BTreeMap<K, V>`",
                    );
                    return None;
                };
                Some(Persistent::Map(Box::new(MapModel {
                    options,
                    attrs: t.attrs.clone(),
                    vis: t.vis.clone(),
                    ident: t.ident.clone(),
                    key,
                    value,
                    map: (*t.ty).clone(),
                })))
            }
            syn::Item::Enum(e) => {
                cx.error(e.enum_token, format!("{what}, not on an enum"));
                None
            }
            syn::Item::Union(u) => {
                cx.error(u.union_token, format!("{what}, not on a union"));
                None
            }
            other => {
                cx.error(other, what);
                None
            }
        }
    }
}

impl StructModel {
    fn new(cx: &Ctxt, item: &ItemStruct, options: ItemOptions) -> Self {
        let mut item = item.clone();
        let mut fields = Vec::new();
        for field in &mut item.fields {
            fields.push(FieldModel::new(cx, field));
            field.attrs.retain(|a| !a.path().is_ident(PERSISTENT));
        }
        StructModel {
            options,
            item,
            fields,
        }
    }
}

impl FieldModel {
    fn new(cx: &Ctxt, field: &Field) -> Self {
        let mut options = FieldOptions::new();
        for a in field.attrs.iter().filter(|a| a.path().is_ident(PERSISTENT)) {
            attr::parse_field(cx, a, &mut options);
        }
        // Named fields always have an identifier.
        let ident = field
            .ident
            .clone()
            .unwrap_or_else(|| Ident::new("_", proc_macro2::Span::call_site()));
        let serde = attr::parse_serde_field(cx, &field.attrs);
        let rename = match (options.rename.value, serde.rename) {
            (Some(ours), Some(theirs)) if ours.value() != theirs.value() => {
                cx.error(
                    &ours,
                    format!(
                        "`#[serde(rename = \"{}\")]` already names the stored entry; remove one \
                         of the two",
                        theirs.value()
                    ),
                );
                Some(ours)
            }
            (ours, theirs) => ours.or(theirs),
        };
        let default = match (options.default.value, serde.default) {
            (Some(ours), Some(_)) => {
                cx.error(
                    &ours,
                    "`#[serde(default)]` already gives this field a default; remove one of the two",
                );
                Some(ours)
            }
            (ours, theirs) => ours.or(theirs),
        };
        let key = rename.unwrap_or_else(|| LitStr::new(&unraw(&ident), ident.span()));
        FieldModel {
            ident,
            ty: field.ty.clone(),
            vis: field.vis.clone(),
            key,
            default,
            stored: !serde.skip,
            serialize_with: serde.serialize_with,
            deserialize_with: serde.deserialize_with,
        }
    }
}

impl MapModel {
    fn new(
        cx: &Ctxt,
        s: &ItemStruct,
        key: Type,
        value: Type,
        map: Type,
        options: ItemOptions,
    ) -> Self {
        for a in s.attrs.iter().filter(|a| a.path().is_ident("derive")) {
            cx.error(
                a,
                "a `#[persistent]` map type is a handle that gets `Clone` and `Debug`; \
                 remove this `derive`",
            );
        }
        MapModel {
            options,
            attrs: s.attrs.clone(),
            vis: s.vis.clone(),
            ident: s.ident.clone(),
            key,
            value,
            map,
        }
    }
}

/// The key and value types of a map type.
fn map_types(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    if !MAP_TYPES.iter().any(|m| last.ident == m) {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    });
    Some((types.next()?, types.next()?))
}

/// An identifier as written, without `r#`.
pub(crate) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#")
        .map_or_else(|| s.clone(), str::to_owned)
}

/// A function as written, with its body kept as tokens: a syntax error in the body is then
/// the compiler's to report, once, where it is (syn would fail the whole item and the
/// function would vanish, making every call of it a second error).
pub(crate) struct FnItem {
    /// The attributes above the function.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    /// The attributes at the start of the body (`#![allow(...)]`).
    pub(crate) inner_attrs: Vec<Attribute>,
    /// The rest of the body, between its braces.
    pub(crate) body: TokenStream,
}

impl Parse for FnItem {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let body = content.parse()?;
        Ok(FnItem {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
        })
    }
}

/// A `#[memoize]`d function.
pub(crate) struct MemoFn {
    pub(crate) options: ItemOptions,
    pub(crate) item: FnItem,
    pub(crate) receiver: Option<Receiver>,
    pub(crate) args: Vec<Arg>,
    pub(crate) output: Output,
}

/// A named argument.
pub(crate) struct Arg {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
    /// Whether `ignore(...)` leaves it out of the key.
    pub(crate) ignored: bool,
}

/// The return type, and what of it is stored.
pub(crate) struct Output {
    /// The whole return type (`()` when none is written).
    pub(crate) ty: Type,
    pub(crate) kind: OutputKind,
}

pub(crate) enum OutputKind {
    /// Every value is stored.
    Whole,
    /// `Result<T, E>`: `Ok(T)` is stored, errors are not.
    Ok(Type),
    /// `Option<T>`: `Some(T)` is stored, `None` is not.
    Some(Type),
}

impl Output {
    /// The type that is stored.
    pub(crate) fn stored(&self) -> &Type {
        match &self.kind {
            OutputKind::Whole => &self.ty,
            OutputKind::Ok(t) | OutputKind::Some(t) => t,
        }
    }
}

impl MemoFn {
    /// The model of `item`; what can't be memoized is recorded in `cx`.
    pub(crate) fn new(
        cx: &Ctxt,
        item: FnItem,
        options: ItemOptions,
        ignore: &[Ident],
        store_all: bool,
    ) -> Self {
        let mut receiver = None;
        let mut args = Vec::new();
        for input in &item.sig.inputs {
            match input {
                FnArg::Receiver(r) => receiver = Some(r.clone()),
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(p) if p.subpat.is_none() => args.push(Arg {
                        ident: p.ident.clone(),
                        ty: (*typed.ty).clone(),
                        ignored: ignore.contains(&p.ident),
                    }),
                    other => cx.error(
                        other,
                        "`#[memoize]` needs a name for each argument, like `text: &str`",
                    ),
                },
            }
        }
        let ty = match &item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        let kind = if store_all {
            OutputKind::Whole
        } else {
            match wrapped(&ty) {
                Some(("Result", t)) => OutputKind::Ok(t),
                Some(("Option", t)) => OutputKind::Some(t),
                _ => OutputKind::Whole,
            }
        };
        MemoFn {
            options,
            item,
            receiver,
            args,
            output: Output { ty, kind },
        }
    }
}

/// `("Result", T)` for `Result<T, ..>` and `("Option", T)` for `Option<T>`, by the last
/// segment of the path (so `io::Result<T>` counts).
fn wrapped(ty: &Type) -> Option<(&'static str, Type)> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let name = ["Result", "Option"].into_iter().find(|n| last.ident == n)?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some((name, t.clone())),
        _ => None,
    }
}
