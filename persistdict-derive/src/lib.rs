//! Implementation detail of [`persistdict`](https://docs.rs/persistdict): its attribute macros.
//!
//! Depend on `persistdict` instead, which re-exports them with their documentation; this
//! crate's API carries no stability guarantee of its own.
//!
//! Each macro runs parse -> model -> check -> expand: `attr` reads the options, `ast` builds
//! the model, `check` records every violation at once, and `expand` writes the code. When
//! anything is wrong, the item is emitted unchanged next to the errors, so its uses don't
//! produce errors of their own.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use quote::{ToTokens, quote};

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod symbol;

use ast::{ItemOptions, MemoFn, Persistent};
use attr::Attr;
use ctxt::Ctxt;
use symbol::{MEMOIZE, PERSISTENT};

/// Makes a struct of typed fields, or a map type, persistent. See `persistdict::persistent`.
#[proc_macro_attribute]
pub fn persistent(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(input as syn::Item);
    let cx = Ctxt::default();
    let expanded = match attr::parse(&cx, Attr::Persistent, args.into()) {
        Ok(options) => {
            let options = ItemOptions::resolve(&cx, options, PERSISTENT);
            Persistent::from_item(&cx, &item, options).map(|model| {
                if let Persistent::Struct(s) = &model {
                    check::persistent_struct(&cx, s);
                }
                match &model {
                    Persistent::Struct(s) => expand::persistent::structure(s),
                    Persistent::Map(m) => expand::persistent::map(m),
                }
            })
        }
        Err(error) => {
            cx.push(error);
            None
        }
    };
    finish(cx, expanded, || fallback_item(&item))
}

/// Memoizes a function's results on disk. See `persistdict::memoize`.
#[proc_macro_attribute]
pub fn memoize(args: TokenStream, input: TokenStream) -> TokenStream {
    let original = proc_macro2::TokenStream::from(input);
    let cx = Ctxt::default();
    let expanded = match (
        attr::parse(&cx, Attr::Memoize, args.into()),
        syn::parse2::<ast::FnItem>(original.clone()),
    ) {
        (Ok(options), Ok(item)) => {
            let ignore = options.ignore.value.clone().unwrap_or_default();
            let store_all = options.store_all.value.unwrap_or(false);
            let options = ItemOptions::resolve(&cx, options, MEMOIZE);
            let model = MemoFn::new(&cx, item, options, &ignore, store_all);
            check::memoize(&cx, &model, &ignore);
            Some(expand::memoize::function(&model))
        }
        (Err(error), _) | (_, Err(error)) => {
            cx.push(error);
            None
        }
    };
    finish(cx, expanded, || original)
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
            field.attrs.retain(|a| !a.path().is_ident(PERSISTENT));
        }
    }
    item.into_token_stream()
}
