//! Implementation detail of [`persistdict`](https://docs.rs/persistdict): its attribute macros.
//!
//! Depend on `persistdict` instead, which re-exports them with their documentation; this
//! crate's API carries no stability guarantee of its own.
//!
//! Each macro runs parse -> model -> check -> expand: `attr` reads the options, `ast` builds
//! the model, `check` records every violation at once, and `expand` writes the code. When
//! anything is wrong, the item is emitted unchanged next to the errors, so its uses don't
//! produce errors of their own.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{ToTokens, quote};

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;

use ast::{MemoFn, Persistent};
use attr::Attr;
use ctxt::Ctxt;

/// Makes a struct of typed fields, or a map type, persistent. See `persistdict::persistent`.
#[proc_macro_attribute]
pub fn persistent(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(input as syn::Item);
    let cx = Ctxt::default();
    let options = attr::parse(&cx, Attr::Persistent, args.into());
    let model = Persistent::from_item(&cx, &item);
    let expanded = match (options, model) {
        (Ok(options), Some(model)) => {
            let path = required_path(&cx, &options, "persistent");
            if let Persistent::Struct(s) = &model {
                check::persistent_struct(&cx, s);
            }
            path.map(|path| match &model {
                Persistent::Struct(s) => expand::persistent::structure(s, &options, &path),
                Persistent::Map(m) => expand::persistent::map(m, &options, &path),
            })
        }
        (Err(error), _) => {
            cx.push(error);
            None
        }
        (Ok(_), None) => None,
    };
    finish(cx, expanded, || fallback_item(&item))
}

/// Memoizes a function's results on disk. See `persistdict::memoize`.
#[proc_macro_attribute]
pub fn memoize(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(input as syn::ItemFn);
    let cx = Ctxt::default();
    let expanded = match attr::parse(&cx, Attr::Memoize, args.into()) {
        Ok(options) => {
            let ignore = options.ignore.value.clone().unwrap_or_default();
            let store_all = options.store_all.value.unwrap_or(false);
            let model = MemoFn::new(&cx, item.clone(), &ignore, store_all);
            check::memoize(&cx, &model, &ignore);
            required_path(&cx, &options, "memoize")
                .map(|path| expand::memoize::function(&model, &options, &path))
        }
        Err(error) => {
            cx.push(error);
            None
        }
    };
    finish(cx, expanded, || item.to_token_stream())
}

fn required_path(cx: &Ctxt, options: &attr::Options, name: &str) -> Option<syn::LitStr> {
    let path = options.path.value.clone();
    if path.is_none() {
        cx.push(syn::Error::new(
            Span::call_site(),
            format!("missing `path` option; add one, like `#[{name}(path = \"data/{name}\")]`"),
        ));
    }
    path
}

/// The expansion, or, if any error was recorded, the original item and the errors.
fn finish(
    cx: Ctxt,
    expanded: Option<proc_macro2::TokenStream>,
    fallback: impl FnOnce() -> proc_macro2::TokenStream,
) -> TokenStream {
    match (cx.finish(), expanded) {
        (Ok(()), Some(tokens)) => tokens.into(),
        (Err(errors), _) => {
            let item = fallback();
            let errors = errors.to_compile_error();
            quote!(#item #errors).into()
        }
        // Every path that yields no expansion records an error first.
        (Ok(()), None) => fallback().into(),
    }
}

/// The item as written, minus our field attributes (which would be errors of their own).
fn fallback_item(item: &syn::Item) -> proc_macro2::TokenStream {
    let mut item = item.clone();
    if let syn::Item::Struct(s) = &mut item {
        for field in &mut s.fields {
            field.attrs.retain(|a| !a.path().is_ident("persistent"));
        }
    }
    item.into_token_stream()
}
