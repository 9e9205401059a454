//! The syntax of the attributes' options: `#[persistent(...)]` on an item and on a field, and
//! `#[memoize(...)]`. Each option has one slot, which reports a second occurrence.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, Ident, Lit, LitStr, Path};

use crate::ctxt::Ctxt;
use crate::symbol::{
    CACHE, CODEC, CRATE, DEFAULT, DURABILITY, ERROR, EVENTUAL, EXPIRE_DAYS, HANDLE, IGNORE,
    IMMEDIATE, INVALIDATE_ON_CHANGE, MAP_SIZE, MEMOIZE, MISSING, NAME, PATH, PERSISTENT, RENAME,
    STORE_ALL, UNDECODABLE, VERSION,
};

/// Which attribute is being parsed; it names the options it accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attr {
    Persistent,
    PersistentField,
    Memoize,
}

impl Attr {
    fn name(self) -> &'static str {
        match self {
            Attr::Persistent | Attr::PersistentField => PERSISTENT,
            Attr::Memoize => MEMOIZE,
        }
    }

    /// The options it accepts, in the order error messages list them.
    fn options(self) -> impl Iterator<Item = &'static str> + Clone {
        /// The options of both attributes on an item.
        const SHARED: [&str; 8] = [
            PATH,
            EXPIRE_DAYS,
            NAME,
            CACHE,
            CODEC,
            DURABILITY,
            MAP_SIZE,
            CRATE,
        ];
        let (shared, own): (&[&str], &[&str]) = match self {
            Attr::Persistent => (&SHARED, &[HANDLE, UNDECODABLE]),
            Attr::PersistentField => (&[], &[DEFAULT, RENAME]),
            Attr::Memoize => (&SHARED, &[VERSION, INVALIDATE_ON_CHANGE, IGNORE, STORE_ALL]),
        };
        shared.iter().chain(own).copied()
    }
}

/// One option's value, if it was given.
pub(crate) struct Slot<T> {
    name: &'static str,
    pub(crate) value: Option<T>,
}

impl<T> Slot<T> {
    const fn new(name: &'static str) -> Self {
        Slot { name, value: None }
    }

    /// Sets the value; a second one is an error spanned on its key.
    fn set(&mut self, cx: &Ctxt, attr: Attr, key: &Path, value: Option<T>) {
        if self.value.is_some() {
            cx.error(
                key,
                format!("duplicate `{}` option `{}`", attr.name(), self.name),
            );
        } else {
            self.value = value;
        }
    }
}

/// How durable commits are.
#[derive(Clone, Copy)]
pub(crate) enum Durability {
    Immediate,
    Eventual,
}

/// The options of `#[persistent]` and `#[memoize]` on an item.
pub(crate) struct Options {
    pub(crate) path: Slot<LitStr>,
    pub(crate) expire_days: Slot<u32>,
    pub(crate) name: Slot<LitStr>,
    pub(crate) cache: Slot<usize>,
    pub(crate) codec: Slot<Path>,
    pub(crate) durability: Slot<Durability>,
    pub(crate) map_size: Slot<u64>,
    pub(crate) krate: Slot<Path>,
    /// `#[persistent]` only.
    pub(crate) handle: Slot<Ident>,
    /// `#[persistent]` only: whether values that no longer decode read as missing.
    pub(crate) undecodable_as_missing: Slot<bool>,
    /// `#[memoize]` only, from here on.
    pub(crate) version: Slot<u32>,
    pub(crate) invalidate_on_change: Slot<bool>,
    pub(crate) ignore: Slot<Vec<Ident>>,
    pub(crate) store_all: Slot<bool>,
}

/// The options of `#[persistent]` on a field.
pub(crate) struct FieldOptions {
    pub(crate) default: Slot<Expr>,
    pub(crate) rename: Slot<LitStr>,
}

impl FieldOptions {
    pub(crate) fn new() -> Self {
        FieldOptions {
            default: Slot::new(DEFAULT),
            rename: Slot::new(RENAME),
        }
    }
}

/// What the `#[serde(...)]` attributes on a field of a `#[persistent]` struct ask for. Each
/// field is stored as its own entry, so each attribute is given the meaning it has for one
/// field: the entry's name, its default, how its value is encoded, or that it is not stored.
#[derive(Default)]
pub(crate) struct SerdeField {
    /// `skip`, `skip_serializing` or `skip_deserializing`: serde neither writes nor reads it,
    /// so it is not stored.
    pub(crate) skip: bool,
    pub(crate) rename: Option<LitStr>,
    /// `default` (the type's `Default`) or `default = "path"`.
    pub(crate) default: Option<Expr>,
    /// `with = "module"` or `serialize_with = "path"`.
    pub(crate) serialize_with: Option<Path>,
    /// `with = "module"` or `deserialize_with = "path"`.
    pub(crate) deserialize_with: Option<Path>,
}

/// Why a serde field attribute can't be honoured on a field stored as its own entry, with
/// what to do instead.
fn serde_refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "flatten" => {
            "a flattened field spreads its fields into the struct, but each field is one \
             entry here; add the inner fields to the struct, or store the inner struct whole"
        }
        "skip_serializing_if" => {
            "a field is written whole by its setter; use `Option<T>` and `reset_field` to \
             remove a stored value"
        }
        "alias" => {
            "a field is read from one entry; use `#[persistent(rename = \"old_name\")]` to keep \
             reading the entry of the old name"
        }
        "borrow" | "bound" | "getter" => {
            "it has no meaning for a field read and written as its own entry"
        }
        _ => return None,
    })
}

/// Parses the `#[serde(...)]` attributes among `attrs` (left on the struct for serde's own
/// derive). Attributes serde itself would reject are left for it to report.
pub(crate) fn parse_serde_field(cx: &Ctxt, attrs: &[syn::Attribute]) -> SerdeField {
    let mut o = SerdeField::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let result = attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            match name.as_str() {
                "skip" | "skip_serializing" | "skip_deserializing" => o.skip = true,
                "rename" => {
                    if meta.input.peek(syn::token::Paren) {
                        let mut names = Vec::new();
                        meta.parse_nested_meta(|inner| {
                            names.push(inner.value()?.parse::<LitStr>()?);
                            Ok(())
                        })?;
                        match names.as_slice() {
                            [one] => o.rename = Some(one.clone()),
                            [a, b] if a.value() == b.value() => o.rename = Some(a.clone()),
                            _ => cx.error(
                                &meta.path,
                                "a field of a `#[persistent]` struct is stored under one name; \
                                 give `rename` one name for both directions",
                            ),
                        }
                    } else {
                        o.rename = Some(meta.value()?.parse::<LitStr>()?);
                    }
                }
                "default" => {
                    o.default = Some(if meta.input.peek(syn::Token![=]) {
                        let function = meta.value()?.parse::<LitStr>()?.parse::<Path>()?;
                        syn::parse_quote!(#function())
                    } else {
                        syn::parse_quote!(::core::default::Default::default())
                    });
                }
                "with" => {
                    let module = meta.value()?.parse::<LitStr>()?.parse::<Path>()?;
                    o.serialize_with = Some(syn::parse_quote!(#module::serialize));
                    o.deserialize_with = Some(syn::parse_quote!(#module::deserialize));
                }
                "serialize_with" => {
                    o.serialize_with = Some(meta.value()?.parse::<LitStr>()?.parse::<Path>()?);
                }
                "deserialize_with" => {
                    o.deserialize_with = Some(meta.value()?.parse::<LitStr>()?.parse::<Path>()?);
                }
                other => {
                    if let Some(why) = serde_refusal(other) {
                        cx.error(
                            &meta.path,
                            format!(
                                "`#[serde({other})]` can't be used on a field of a \
                                 `#[persistent]` struct: {why}"
                            ),
                        );
                    }
                    skip_value(&meta)?;
                }
            }
            Ok(())
        });
        // Malformed serde attributes are serde's to report.
        drop(result);
    }
    o
}

/// Consumes what follows an attribute's name: `= value`, `(...)` or nothing.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_value(&inner))?;
    }
    Ok(())
}

/// Parses the arguments of the item attribute `attr`. Syntax errors and unknown options stop
/// the parse; wrong values and duplicates are collected in `cx` and parsing goes on.
pub(crate) fn parse(cx: &Ctxt, attr: Attr, args: TokenStream) -> syn::Result<Options> {
    let mut o = Options {
        path: Slot::new(PATH),
        expire_days: Slot::new(EXPIRE_DAYS),
        name: Slot::new(NAME),
        cache: Slot::new(CACHE),
        codec: Slot::new(CODEC),
        durability: Slot::new(DURABILITY),
        map_size: Slot::new(MAP_SIZE),
        krate: Slot::new(CRATE),
        handle: Slot::new(HANDLE),
        undecodable_as_missing: Slot::new(UNDECODABLE),
        version: Slot::new(VERSION),
        invalidate_on_change: Slot::new(INVALIDATE_ON_CHANGE),
        ignore: Slot::new(IGNORE),
        store_all: Slot::new(STORE_ALL),
    };
    let parser = syn::meta::parser(|meta| {
        let key = meta.path.clone();
        let known = |name: &str| attr.options().any(|o| o == name) && meta.path.is_ident(name);
        if known(PATH) {
            let v = string(cx, &meta, "path = \"state/app\"")?;
            o.path.set(cx, attr, &key, v);
        } else if known(EXPIRE_DAYS) {
            let v = int(cx, &meta, "expire_days = 30")?;
            o.expire_days.set(cx, attr, &key, v);
        } else if known(NAME) {
            let v = string(cx, &meta, "name = \"app\"")?;
            o.name.set(cx, attr, &key, v);
        } else if known(CACHE) {
            let v = int(cx, &meta, "cache = 128")?;
            o.cache.set(cx, attr, &key, v);
        } else if known(CODEC) {
            let v = parsed(cx, &meta, "codec = \"persistdict::Json\"")?;
            o.codec.set(cx, attr, &key, v);
        } else if known(DURABILITY) {
            let v = choice(
                cx,
                &meta,
                "durability = \"eventual\"",
                [
                    (IMMEDIATE, Durability::Immediate),
                    (EVENTUAL, Durability::Eventual),
                ],
            )?;
            o.durability.set(cx, attr, &key, v);
        } else if known(UNDECODABLE) {
            let v = choice(
                cx,
                &meta,
                "undecodable = \"missing\"",
                [(MISSING, true), (ERROR, false)],
            )?;
            o.undecodable_as_missing.set(cx, attr, &key, v);
        } else if known(MAP_SIZE) {
            let v = int(cx, &meta, "map_size = 1_073_741_824")?;
            o.map_size.set(cx, attr, &key, v);
        } else if known(CRATE) {
            let v = parsed(cx, &meta, "crate = \"my_persistdict\"")?;
            o.krate.set(cx, attr, &key, v);
        } else if known(HANDLE) {
            let v = parsed(cx, &meta, "handle = \"AppStateStore\"")?;
            o.handle.set(cx, attr, &key, v);
        } else if known(VERSION) {
            let v = int(cx, &meta, "version = 2")?;
            o.version.set(cx, attr, &key, v);
        } else if known(INVALIDATE_ON_CHANGE) {
            let v = boolean(cx, &meta, "invalidate_on_change = false")?;
            o.invalidate_on_change.set(cx, attr, &key, v);
        } else if known(STORE_ALL) {
            let v = boolean(cx, &meta, "store_all = true")?;
            o.store_all.set(cx, attr, &key, v);
        } else if known(IGNORE) {
            let mut names = Vec::new();
            meta.parse_nested_meta(|inner| {
                match inner.path.get_ident() {
                    Some(name) => names.push(name.clone()),
                    None => cx.error(&inner.path, "expected an argument's name"),
                }
                Ok(())
            })?;
            o.ignore.set(cx, attr, &key, Some(names));
        } else {
            return Err(unknown(attr, &meta));
        }
        Ok(())
    });
    parser.parse2(args)?;
    Ok(o)
}

/// Parses the options of one `#[persistent(...)]` field attribute into `o`.
pub(crate) fn parse_field(cx: &Ctxt, attr: &syn::Attribute, o: &mut FieldOptions) {
    let result = attr.parse_nested_meta(|meta| {
        let key = meta.path.clone();
        if meta.path.is_ident(DEFAULT) {
            let v = meta.value()?.parse::<Expr>()?;
            o.default.set(cx, Attr::PersistentField, &key, Some(v));
        } else if meta.path.is_ident(RENAME) {
            let v = string(cx, &meta, "rename = \"stored_name\"")?;
            o.rename.set(cx, Attr::PersistentField, &key, v);
        } else {
            return Err(unknown(Attr::PersistentField, &meta));
        }
        Ok(())
    });
    if let Err(error) = result {
        cx.push(error);
    }
}

fn unknown(attr: Attr, meta: &ParseNestedMeta<'_>) -> syn::Error {
    let name = meta
        .path
        .get_ident()
        .map_or_else(|| meta.path.to_token_stream().to_string(), Ident::to_string);
    let accepted = attr
        .options()
        .map(|o| format!("`{o}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let place = if attr == Attr::PersistentField {
        " on a field"
    } else {
        ""
    };
    meta.error(format!(
        "unknown `{}` option `{name}`{place}; expected one of {accepted}",
        attr.name()
    ))
}

/// The literal after `=`; a value of another kind is reported (naming `example`) and `None`.
fn literal(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    kind: &str,
    example: &str,
) -> syn::Result<Option<Lit>> {
    let expr = meta.value()?.parse::<Expr>()?;
    if let Expr::Lit(lit) = &expr {
        return Ok(Some(lit.lit.clone()));
    }
    cx.error(&expr, format!("expected {kind}, like `{example}`"));
    Ok(None)
}

fn string(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<LitStr>> {
    Ok(match literal(cx, meta, "a string", example)? {
        Some(Lit::Str(s)) => Some(s),
        Some(other) => {
            cx.error(other, format!("expected a string, like `{example}`"));
            None
        }
        None => None,
    })
}

fn int<N>(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<N>>
where
    N: std::str::FromStr,
    N::Err: std::fmt::Display,
{
    Ok(match literal(cx, meta, "an integer", example)? {
        Some(Lit::Int(i)) => match i.base10_parse::<N>() {
            Ok(n) => Some(n),
            Err(e) => {
                cx.push(e);
                None
            }
        },
        Some(other) => {
            cx.error(other, format!("expected an integer, like `{example}`"));
            None
        }
        None => None,
    })
}

fn boolean(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<bool>> {
    Ok(match literal(cx, meta, "`true` or `false`", example)? {
        Some(Lit::Bool(b)) => Some(b.value),
        Some(other) => {
            cx.error(
                other,
                format!("expected `true` or `false`, like `{example}`"),
            );
            None
        }
        None => None,
    })
}

/// A string whose content parses as `T` (a path, an identifier).
fn parsed<T: syn::parse::Parse>(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    example: &str,
) -> syn::Result<Option<T>> {
    Ok(string(cx, meta, example)?.and_then(|s| {
        let parsed = s.parse::<T>().ok();
        if parsed.is_none() {
            let message = format!(
                "cannot parse `{}`; expected something like `{example}`",
                s.value()
            );
            cx.error(&s, message);
        }
        parsed
    }))
}

/// A string that must be one of `choices`' names; gives the value paired with it.
fn choice<T: Copy, const N: usize>(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    example: &str,
    choices: [(&str, T); N],
) -> syn::Result<Option<T>> {
    Ok(string(cx, meta, example)?.and_then(|s| {
        let value = s.value();
        let found = choices.iter().find(|(name, _)| *name == value);
        if found.is_none() {
            let names: Vec<_> = choices
                .iter()
                .map(|(name, _)| format!("`\"{name}\"`"))
                .collect();
            cx.error(&s, format!("expected {}", names.join(" or ")));
        }
        found.map(|&(_, v)| v)
    }))
}
