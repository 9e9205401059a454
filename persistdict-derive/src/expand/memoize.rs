//! `#[memoize]`: the function, wrapped around its original body, and its companions.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use super::Paths;
use crate::ast::{MemoFn, OutputKind, unraw};

pub(crate) fn function(model: &MemoFn) -> TokenStream {
    let options = &model.options;
    let path = &options.path;
    let paths = Paths::new(options);
    let Paths { private, codec, .. } = &paths;
    let item = &model.item;
    let (attrs, inner_attrs, vis, sig) = (&item.attrs, &item.inner_attrs, &item.vis, &item.sig);
    let body = &item.body;
    let block = quote!({ #body });
    let name = unraw(&sig.ident);
    let output = &model.output.ty;
    let stored = model.output.stored();

    let source = namespace_source(model, &block);
    let version = options.version;
    let runtime_options = paths.options(options);
    let memo_type = quote!(#private::Memo<#stored, #codec>);
    let memo_static = quote! {
        static __PERSISTDICT_MEMO: #memo_type = #private::new_memo(#private::MemoConfig {
            path: #path,
            package: ::core::option_env!("CARGO_PKG_NAME"),
            function: ::core::concat!(::core::module_path!(), "::", #name),
            source: #source,
            version: #version,
            options: #runtime_options,
        });
    };

    let keyed: Vec<_> = model.args.iter().filter(|a| !a.ignored).collect();
    let key_names: Vec<_> = keyed.iter().map(|a| &a.ident).collect();
    let key_expr = quote!(#private::memo_key(&__PERSISTDICT_MEMO, &(#(&#key_names,)*)));
    let asserts = keyed.iter().map(|a| {
        let ty = &a.ty;
        quote_spanned!(ty.span()=> #private::assert_key::<#ty>();)
    });
    let value_assert = quote_spanned!(stored.span()=> #private::assert_value::<#stored>(););

    let (keep, wrap) = keep_and_wrap(&model.output.kind, output, stored);
    let call = if sig.asyncness.is_some() {
        quote! {
            #private::memo_call_async(
                    &__PERSISTDICT_MEMO,
                    __persistdict_key,
                    async move {
                        let __persistdict_out: #output = #block;
                        __persistdict_out
                    },
                    #keep,
                    #wrap,
                )
            .await
        }
    } else {
        quote! {
            #private::memo_call(&__PERSISTDICT_MEMO, __persistdict_key, move || -> #output #block, #keep, #wrap)
        }
    };

    let invalidate = format_ident!("{}_invalidate", name, span = sig.ident.span());
    let memo = format_ident!("{}_memo", name, span = sig.ident.span());
    let lifetimes = &sig.generics;
    let params = keyed.iter().map(|a| {
        let (ident, ty) = (&a.ident, &a.ty);
        quote!(#ident: #ty)
    });
    let invalidate_doc = format!(
        "Removes the stored result of [`{name}`] for these arguments, so that the next such \
         call computes it again; returns whether there was one. Made by `#[memoize]`.\n\n\
         # Errors\n\nWhen storage fails."
    );
    let memo_doc = format!(
        "The stored results of [`{name}`], made by `#[memoize]`: `.clear()` removes them all, \
         `.dict()` reaches the underlying `PersistDict` (for `stats()` and `metadata()`)."
    );
    let result_bool = paths.result(&quote!(bool));
    quote! {
        #(#attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #(#asserts)*
            #value_assert
            #memo_static
            let __persistdict_key = #key_expr;
            #call
        }

        #[doc = #invalidate_doc]
        #[allow(dead_code)]
        #vis fn #invalidate #lifetimes (#(#params),*) -> #result_bool {
            #memo_static
            #private::memo_invalidate(&__PERSISTDICT_MEMO, #key_expr)
        }

        #[doc = #memo_doc]
        #[allow(dead_code)]
        #[must_use]
        #vis fn #memo() -> &'static #memo_type {
            #memo_static
            &__PERSISTDICT_MEMO
        }
    }
}

/// What of the function its namespace covers: the signature and the body, not the attributes
/// (docs), as a digest of their tokens, so that the binary holds no copy of the source; ""
/// with `invalidate_on_change = false`.
fn namespace_source(model: &MemoFn, block: &TokenStream) -> String {
    if !model.options.invalidate_on_change {
        return String::new();
    }
    let mut tokens = model.item.sig.to_token_stream();
    block.to_tokens(&mut tokens);
    blake3::hash(canonical(tokens).as_bytes())
        .to_hex()
        .to_string()
}

/// `keep` picks the stored value out of a result; `wrap` makes a result of a stored value.
fn keep_and_wrap(kind: &OutputKind, output: &Type, stored: &Type) -> (TokenStream, TokenStream) {
    let option = quote!(::core::option::Option);
    let keep_body = match kind {
        OutputKind::Whole => {
            quote!(#option::Some(::core::clone::Clone::clone(__persistdict_r)))
        }
        OutputKind::Ok(_) => {
            let ok = quote!(::core::result::Result::ok(::core::result::Result::as_ref(
                __persistdict_r
            )));
            quote!(#option::map(#ok, ::core::clone::Clone::clone))
        }
        OutputKind::Some(_) => quote!(::core::clone::Clone::clone(__persistdict_r)),
    };
    let wrap_body = match kind {
        OutputKind::Whole => quote!(__persistdict_v),
        OutputKind::Ok(_) => quote!(::core::result::Result::Ok(__persistdict_v)),
        OutputKind::Some(_) => quote!(#option::Some(__persistdict_v)),
    };
    (
        quote!(|__persistdict_r: &#output| -> #option<#stored> { #keep_body }),
        quote!(|__persistdict_v: #stored| -> #output { #wrap_body }),
    )
}

/// The tokens as text, one space between tokens: independent of how the source was laid out
/// and of how the compiler prints token streams.
fn canonical(tokens: TokenStream) -> String {
    fn walk(tokens: TokenStream, out: &mut String) {
        for token in tokens {
            match token {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    out.push_str(open);
                    out.push(' ');
                    walk(g.stream(), out);
                    out.push_str(close);
                }
                TokenTree::Ident(i) => out.push_str(&i.to_string()),
                TokenTree::Punct(p) => out.push(p.as_char()),
                TokenTree::Literal(l) => out.push_str(&l.to_string()),
            }
            out.push(' ');
        }
    }
    let mut out = String::new();
    walk(tokens, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::canonical;
    use quote::quote;

    #[test]
    fn layout_does_not_change_the_canonical_text() {
        let a = quote!(
            fn f(x: u32) -> u32 {
                x + 1
            }
        );
        let b: proc_macro2::TokenStream = "fn f ( x : u32 )->u32{\n    x+1\n}".parse().unwrap();
        assert_eq!(canonical(a), canonical(b));
    }

    #[test]
    fn a_change_to_the_body_changes_the_canonical_text() {
        let a = quote!(
            fn f(x: u32) -> u32 {
                x + 1
            }
        );
        let b = quote!(
            fn f(x: u32) -> u32 {
                x + 2
            }
        );
        assert_ne!(canonical(a), canonical(b));
    }
}
