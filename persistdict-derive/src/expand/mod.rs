//! Code generation from checked models; the only place that writes code.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::ItemOptions;
use crate::attr::Durability;

pub(crate) mod memoize;
pub(crate) mod persistent;

/// How generated code names the runtime crate and its hidden module.
pub(crate) struct Paths {
    /// `::persistdict`, or the `crate = "..."` option.
    pub(crate) krate: TokenStream,
    /// `<krate>::__private`.
    pub(crate) private: TokenStream,
    /// The value codec's type: the `codec` option, or `<krate>::Postcard`.
    pub(crate) codec: TokenStream,
}

impl Paths {
    pub(crate) fn new(options: &ItemOptions) -> Self {
        let krate = options
            .krate
            .as_ref()
            .map_or_else(|| quote!(::persistdict), |p| quote!(#p));
        let codec = options
            .codec
            .as_ref()
            .map_or_else(|| quote!(#krate::Postcard), |p| quote!(#p));
        Paths {
            private: quote!(#krate::__private),
            krate,
            codec,
        }
    }

    /// An expression of the runtime's `AttrOptions` with what the attribute set.
    pub(crate) fn options(&self, options: &ItemOptions) -> TokenStream {
        let Paths { krate, private, .. } = self;
        let some = |value: Option<TokenStream>| {
            value.map_or_else(
                || quote!(::core::option::Option::None),
                |v| quote!(::core::option::Option::Some(#v)),
            )
        };
        let name = some(options.name.as_ref().map(|n| quote!(#n)));
        let expire_days = some(options.expire_days.map(|d| quote!(#d)));
        let cache = some(options.cache.map(|c| quote!(#c)));
        let map_size = some(options.map_size.map(|m| quote!(#m)));
        let undecodable_as_missing = some(options.undecodable_as_missing.map(|m| quote!(#m)));
        let durability = some(options.durability.map(|d| match d {
            Durability::Immediate => quote!(#krate::Durability::Immediate),
            Durability::Eventual => quote!(#krate::Durability::Eventual),
        }));
        quote! {
            #private::AttrOptions {
                name: #name,
                expire_days: #expire_days,
                cache: #cache,
                durability: #durability,
                map_size: #map_size,
                undecodable_as_missing: #undecodable_as_missing,
            }
        }
    }

    /// `Result<T, Error>` of the runtime.
    pub(crate) fn result(&self, ty: &TokenStream) -> TokenStream {
        let krate = &self.krate;
        quote!(::core::result::Result<#ty, #krate::Error>)
    }

    /// An expression of the codec's value.
    pub(crate) fn codec_value(&self) -> TokenStream {
        let codec = &self.codec;
        quote!(<#codec as ::core::default::Default>::default())
    }
}
