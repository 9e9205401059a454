//! The syntax of the attributes' options: `#[persistent(...)]` on an item and on a field, and
//! `#[memoize(...)]`. Each option has one slot, which reports a second occurrence.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::parse::Parser;
use syn::{Expr, Ident, Lit, LitStr, Path};

use crate::ctxt::Ctxt;
use crate::symbol::{
    CACHE, CODEC, CRATE, DEFAULT, DURABILITY, EVENTUAL, EXPIRE_DAYS, HANDLE, IGNORE, IMMEDIATE,
    INVALIDATE_ON_CHANGE, MAP_SIZE, MEMOIZE, NAME, PATH, PERSISTENT, RENAME, STORE_ALL, VERSION,
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
            Attr::Persistent => (&SHARED, &[HANDLE]),
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
            let v = durability(cx, &meta)?;
            o.durability.set(cx, attr, &key, v);
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

fn durability(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Durability>> {
    let example = "durability = \"eventual\"";
    Ok(
        string(cx, meta, example)?.and_then(|s| match s.value().as_str() {
            IMMEDIATE => Some(Durability::Immediate),
            EVENTUAL => Some(Durability::Eventual),
            _ => {
                cx.error(
                    &s,
                    format!("expected `\"{IMMEDIATE}\"` or `\"{EVENTUAL}\"`"),
                );
                None
            }
        }),
    )
}
