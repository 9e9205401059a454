//! Rules across the parts of an item, checked on the model; every violation is recorded.

use std::collections::HashMap;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit::Visit;
use syn::{Ident, Type};

use crate::ast::{MemoFn, StructModel};
use crate::ctxt::Ctxt;

/// Methods of the handle that are not per field.
const HANDLE_METHODS: [&str; 7] = ["open", "open_at", "load", "save", "modify", "flush", "path"];

/// The per-field method names a field gets.
pub(crate) fn field_methods(field: &Ident) -> [Ident; 4] {
    let name = crate::ast::unraw(field);
    let span = field.span();
    [
        field.clone(),
        Ident::new(&format!("set_{name}"), span),
        Ident::new(&format!("update_{name}"), span),
        Ident::new(&format!("reset_{name}"), span),
    ]
}

pub(crate) fn persistent_struct(cx: &Ctxt, model: &StructModel) {
    let mut methods: HashMap<String, &Ident> = HashMap::new();
    let mut keys: HashMap<String, &Ident> = HashMap::new();
    // A field serde skips is not stored and gets no methods.
    for field in model.fields.iter().filter(|f| f.stored) {
        for method in field_methods(&field.ident) {
            let name = crate::ast::unraw(&method);
            if HANDLE_METHODS.contains(&name.as_str()) {
                cx.error(
                    &field.ident,
                    format!(
                        "field `{}` would get a method `{name}`, which the handle already has; \
                         rename the field",
                        field.ident
                    ),
                );
            } else if let Some(other) = methods.insert(name.clone(), &field.ident) {
                cx.error(
                    &field.ident,
                    format!(
                        "fields `{other}` and `{}` would both get a method `{name}`; rename one",
                        field.ident
                    ),
                );
            }
        }
        if let Some(other) = keys.insert(field.key.value(), &field.ident) {
            cx.error(
                &field.key,
                format!(
                    "fields `{other}` and `{}` would be stored under the same name `{}`",
                    field.ident,
                    field.key.value()
                ),
            );
        }
    }
}

pub(crate) fn memoize(cx: &Ctxt, model: &MemoFn, ignore: &[Ident]) {
    let sig = &model.item.sig;
    if let Some(constness) = &sig.constness {
        cx.error(
            constness,
            "`#[memoize]` can't make a `const fn` read from disk",
        );
    }
    for param in &sig.generics.params {
        if !matches!(param, syn::GenericParam::Lifetime(_)) {
            cx.error(
                param,
                "`#[memoize]` can't memoize a generic function: its results need one type; \
                 write a non-generic wrapper and memoize that",
            );
        }
    }
    if let Some(receiver) = &model.receiver
        && !ignore.iter().any(|i| i == "self")
    {
        cx.error(
            receiver,
            "`#[memoize]` can't key results on `self`; if the result does not depend on it, \
             add `ignore(self)`, otherwise make it an argument that is `Serialize`",
        );
    }
    for name in ignore {
        let found = name == "self" && model.receiver.is_some()
            || model.args.iter().any(|a| a.ident == *name);
        if !found {
            let names: Vec<String> = model
                .receiver
                .iter()
                .map(|_| "`self`".to_owned())
                .chain(model.args.iter().map(|a| format!("`{}`", a.ident)))
                .collect();
            let known = if names.is_empty() {
                "it has no arguments".to_owned()
            } else {
                format!("its arguments are {}", names.join(", "))
            };
            cx.error(
                name,
                format!(
                    "`ignore` names `{name}`, which is not an argument of the function; {known}"
                ),
            );
        }
    }
    for arg in model.args.iter().filter(|a| !a.ignored) {
        if let Some((ident, fix)) = unordered(arg.ty.to_token_stream()) {
            cx.error(
                &ident,
                format!(
                    "`{ident}` serializes in an order that equal values don't share, so equal \
                     arguments would be different keys; take a `{fix}` (or sort the entries into \
                     a `Vec`), or leave `{}` out of the key with `ignore({})`",
                    arg.ident, arg.ident
                ),
            );
        }
        if let Some(span) = impl_trait(&arg.ty) {
            cx.error(
                span,
                format!(
                    "an `impl Trait` argument can't be part of a key; give `{}` a concrete type, \
                     or leave it out of the key with `ignore({})`",
                    arg.ident, arg.ident
                ),
            );
        }
    }
    let output = &model.output.ty;
    if let Some(span) = impl_trait(output) {
        cx.error(
            span,
            "`#[memoize]` can't store an `impl Trait` return type; name the type",
        );
    } else if mentions_self(output.to_token_stream()) {
        cx.error(
            output,
            "`#[memoize]` needs the return type spelled out; replace `Self` with the type's name",
        );
    } else if let Some(reference) = reference(model.output.stored()) {
        cx.error(
            reference,
            "`#[memoize]` reads results back from disk, which can't give a reference; return an \
             owned type (`String` for `&str`, `Vec<T>` for `&[T]`)",
        );
    }
}

/// The first reference type inside `ty` (`&'static str`, `Vec<&str>`...).
fn reference(ty: &Type) -> Option<&syn::TypeReference> {
    struct Find<'a>(Option<&'a syn::TypeReference>);
    impl<'a> Visit<'a> for Find<'a> {
        fn visit_type_reference(&mut self, t: &'a syn::TypeReference) {
            self.0.get_or_insert(t);
        }
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0
}

/// The first `impl Trait` inside `ty`.
fn impl_trait(ty: &Type) -> Option<&syn::TypeImplTrait> {
    struct Find<'a>(Option<&'a syn::TypeImplTrait>);
    impl<'a> Visit<'a> for Find<'a> {
        fn visit_type_impl_trait(&mut self, t: &'a syn::TypeImplTrait) {
            self.0.get_or_insert(t);
        }
    }
    let mut find = Find(None);
    find.visit_type(ty);
    find.0
}

/// The first collection in `tokens` whose serialization order differs between equal values,
/// with the ordered type to use instead.
fn unordered(tokens: TokenStream) -> Option<(Ident, &'static str)> {
    const UNORDERED: [(&str, &str); 4] = [
        ("HashMap", "BTreeMap"),
        ("HashSet", "BTreeSet"),
        ("IndexMap", "BTreeMap"),
        ("IndexSet", "BTreeSet"),
    ];
    tokens.into_iter().find_map(|t| match t {
        TokenTree::Ident(i) => UNORDERED
            .iter()
            .find(|(name, _)| i == name)
            .map(|(_, fix)| (i, *fix)),
        TokenTree::Group(g) => unordered(g.stream()),
        _ => None,
    })
}

fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == "Self",
        TokenTree::Group(g) => mentions_self(g.stream()),
        _ => false,
    })
}
