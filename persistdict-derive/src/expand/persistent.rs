//! `#[persistent]`: a handle type for a struct, or a named dict for a map type.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, LitStr, Visibility};

use super::Paths;
use crate::ast::{FieldModel, MapModel, StructModel, unraw};
use crate::check::field_methods;

pub(crate) fn structure(model: &StructModel) -> TokenStream {
    let options = &model.options;
    let path = &options.path;
    let paths = Paths::new(options);
    let Paths { private, codec, .. } = &paths;
    let item = &model.item;
    let ident = &item.ident;
    let vis = &item.vis;
    let handle = options
        .handle
        .clone()
        .unwrap_or_else(|| format_ident!("{}Store", ident));
    let result_handle = paths.result(&quote!(#handle));
    let result_unit = paths.result(&quote!(()));
    let at = path.value();

    // A field with serde `with` functions is checked by its wrapper's impls instead.
    let asserts = model
        .fields
        .iter()
        .filter(|f| f.stored && f.serialize_with.is_none() && f.deserialize_with.is_none())
        .map(|f| {
            let ty = &f.ty;
            quote_spanned!(ty.span()=> #private::assert_field::<#ty>();)
        });
    let wrappers = model.fields.iter().map(|f| wrapper(&paths, ident, f));
    let runtime_options = paths.options(options);
    let codec_value = paths.codec_value();
    let open = open_methods(
        &paths,
        vis,
        path,
        &format!("the persistent `{ident}`"),
        &quote! {
            #(#asserts)*
            Self {
                __persistdict_fields: #private::Fields::open(
                    __persistdict_path,
                    &#runtime_options,
                    #codec_value,
                )?,
            }
        },
    );
    let whole = whole_struct(&paths, model);
    let accessors = model
        .fields
        .iter()
        .filter(|f| f.stored)
        .map(|f| accessors(&paths, ident, f));

    let handle_doc = format!(
        "A handle to the persistent [`{ident}`] stored at `{at}`, made by `#[persistent]`.\n\n\
         Each field is stored as its own entry, so processes that change different fields \
         don't overwrite each other. A field that was never stored reads as its default. \
         Cloning is cheap, and the handle is `Send + Sync`."
    );
    let open_doc = format!("Opens the persistent `{ident}`: [`{handle}::open`].");
    let open_at_doc = format!("Opens the persistent `{ident}` at `path`: [`{handle}::open_at`].");
    quote! {
        #item

        #(#wrappers)*

        #[doc = #handle_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #handle {
            __persistdict_fields: #private::Fields<#codec>,
        }

        impl #ident {
            #[doc = #open_doc]
            ///
            /// # Errors
            ///
            /// When the directory can't be created or opened.
            #vis fn open() -> #result_handle {
                #handle::open()
            }

            #[doc = #open_at_doc]
            ///
            /// # Errors
            ///
            /// When the directory can't be created or opened.
            #vis fn open_at(path: impl ::core::convert::AsRef<::std::path::Path>) -> #result_handle {
                #handle::open_at(path)
            }
        }

        #[allow(dead_code)]
        impl #handle {
            #open

            #whole

            /// Stores pending access times and syncs to disk.
            ///
            /// # Errors
            ///
            /// When storage fails.
            #vis fn flush(&self) -> #result_unit {
                self.__persistdict_fields.flush()
            }

            /// The directory, canonicalized.
            #[must_use]
            #vis fn path(&self) -> &::std::path::Path {
                self.__persistdict_fields.path()
            }

            #(#accessors)*
        }
    }
}

/// `PATH`, `open()` and `open_at(path)` of a generated type; `make` builds `Self` from
/// `__persistdict_path: &Path` and may use `?`.
fn open_methods(
    paths: &Paths,
    vis: &Visibility,
    path: &LitStr,
    what: &str,
    make: &TokenStream,
) -> TokenStream {
    let private = &paths.private;
    let result_self = paths.result(&quote!(Self));
    let at = path.value();
    let open_doc = format!(
        "Opens {what} at `{at}`: a relative path is under `$PERSISTDICT_DIR/<package>` when \
         that variable is set, else under the platform's data directory, in a folder named after \
         the package; `~/` is the home directory."
    );
    let open_at_doc = format!("Opens {what} at `path` instead of `{at}`.");
    quote! {
        /// The directory given to the attribute.
        #vis const PATH: &'static str = #path;

        #[doc = #open_doc]
        ///
        /// # Errors
        ///
        /// When the directory can't be created or opened.
        #vis fn open() -> #result_self {
            Self::open_at(#private::resolve_path(
                Self::PATH,
                #private::BaseDir::Data,
                ::core::option_env!("CARGO_PKG_NAME"),
            )?)
        }

        #[doc = #open_at_doc]
        ///
        /// # Errors
        ///
        /// When the directory can't be created or opened.
        #vis fn open_at(path: impl ::core::convert::AsRef<::std::path::Path>) -> #result_self {
            let __persistdict_path = ::core::convert::AsRef::<::std::path::Path>::as_ref(&path);
            ::core::result::Result::Ok({ #make })
        }
    }
}

/// `load`, `save` and `modify`.
fn whole_struct(paths: &Paths, model: &StructModel) -> TokenStream {
    let krate = &paths.krate;
    let ident = &model.item.ident;
    let vis = &model.item.vis;
    let result_unit = paths.result(&quote!(()));
    let result_struct = paths.result(&quote!(#ident));
    let read_fields: Vec<_> = model
        .fields
        .iter()
        .map(|f| {
            let (name, ty) = (&f.ident, &f.ty);
            let default = default(ident, f);
            if !f.stored {
                return quote!(#name: { #default },);
            }
            let stored = read(ident, f, &quote!(__persistdict_tx));
            quote! {
                #name: #stored.unwrap_or_else(|| -> #ty { #default }),
            }
        })
        .collect();
    let set_fields: Vec<_> = model
        .fields
        .iter()
        .filter(|f| f.stored)
        .map(|f| {
            let (name, key) = (&f.ident, &f.key);
            let value = write_arg(ident, f, &quote!(&__persistdict_state.#name));
            let decoded = decoded_type(ident, f);
            quote!(__persistdict_tx.set::<_, #decoded>(#key, #value)?;)
        })
        .collect();
    quote! {
        /// Reads every field in one read transaction: a consistent snapshot.
        ///
        /// # Errors
        ///
        /// When a stored field can't be decoded as its type (`Error::Field`), or storage
        /// fails.
        #vis fn load(&self) -> #result_struct {
            self.__persistdict_fields.read(|__persistdict_tx| {
                ::core::result::Result::Ok(#ident { #(#read_fields)* })
            })
        }

        /// Stores every field in one write transaction. Fields equal to what is stored are
        /// left alone.
        ///
        /// # Errors
        ///
        /// When a field can't be encoded, or storage fails.
        #vis fn save(&self, state: &#ident) -> #result_unit {
            self.__persistdict_fields.write(|__persistdict_tx| {
                let __persistdict_state = state;
                #(#set_fields)*
                ::core::result::Result::Ok(())
            })
        }

        /// Atomically loads the state, applies `f` to it and stores the fields that changed,
        /// in one write transaction (other writers, in any process, wait). Returns what `f`
        /// returns. `f` may run more than once if the map has to grow; only the last run is
        /// stored.
        ///
        /// # Errors
        ///
        /// When a stored field can't be decoded as its type (`f` is then not called), a field
        /// can't be encoded, or storage fails.
        #vis fn modify<__PersistdictR>(
            &self,
            mut f: impl ::core::ops::FnMut(&mut #ident) -> __PersistdictR,
        ) -> ::core::result::Result<__PersistdictR, #krate::Error> {
            self.__persistdict_fields.write(|__persistdict_tx| {
                let mut __persistdict_value = #ident { #(#read_fields)* };
                let __persistdict_out = f(&mut __persistdict_value);
                let __persistdict_state = &__persistdict_value;
                #(#set_fields)*
                ::core::result::Result::Ok(__persistdict_out)
            })
        }
    }
}

/// The value a field has when it was never stored: its `default = ...`, or the struct's
/// `Default` (spanned on the field, so a missing `Default` impl is reported there).
fn default(ident: &Ident, field: &FieldModel) -> TokenStream {
    if let Some(expr) = &field.default {
        return quote!(#expr);
    }
    let name = &field.ident;
    // The struct's name with the field's span: a missing `Default` is reported at the field.
    let mut ty = ident.clone();
    ty.set_span(name.span());
    quote_spanned!(name.span()=> <#ty as ::core::default::Default>::default().#name)
}

/// The names of the types that carry a field through its serde `with` functions: one that
/// owns a value (decoded) and one that borrows it (encoded).
fn wrapper_names(ident: &Ident, field: &FieldModel) -> Option<(Ident, Ident)> {
    if field.serialize_with.is_none() && field.deserialize_with.is_none() {
        return None;
    }
    let name = unraw(&field.ident);
    Some((
        format_ident!("__PersistdictField_{}_{}", ident, name),
        format_ident!("__PersistdictFieldRef_{}_{}", ident, name),
    ))
}

/// The wrapper types of a field with serde `with` functions: serde calls them for the field
/// inside the struct, and the field's own entry is encoded the same way.
fn wrapper(paths: &Paths, ident: &Ident, field: &FieldModel) -> TokenStream {
    let Some((owned, borrowed)) = wrapper_names(ident, field) else {
        return TokenStream::new();
    };
    let private = &paths.private;
    let ty = &field.ty;
    let serde = quote!(#private::serde);
    let serialize = field.serialize_with.as_ref().map_or_else(
        || quote!(<#ty as #serde::Serialize>::serialize),
        |path| quote!(#path),
    );
    let deserialize = field.deserialize_with.as_ref().map_or_else(
        || quote!(<#ty as #serde::Deserialize<'de>>::deserialize),
        |path| quote!(#path),
    );
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        struct #owned(#ty);

        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        struct #borrowed<'a>(&'a #ty);

        impl<'de> #serde::Deserialize<'de> for #owned {
            fn deserialize<__D: #serde::Deserializer<'de>>(
                deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                #deserialize(deserializer).map(#owned)
            }
        }

        impl #serde::Serialize for #borrowed<'_> {
            fn serialize<__S: #serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                #serialize(self.0, serializer)
            }
        }
    }
}

/// `Option<field type>`: the field's stored value read through `source` (a `Fields`,
/// `FieldsRead` or `FieldsWrite`), with `?` on errors.
fn read(ident: &Ident, field: &FieldModel, source: &TokenStream) -> TokenStream {
    let (ty, key) = (&field.ty, &field.key);
    match wrapper_names(ident, field) {
        None => quote!(#source.get::<#ty>(#key)?),
        Some((owned, _)) => quote!(#source.get::<#owned>(#key)?.map(|__w| __w.0)),
    }
}

/// The type a field's stored value is decoded as: the field's, or its wrapper's.
fn decoded_type(ident: &Ident, field: &FieldModel) -> TokenStream {
    match wrapper_names(ident, field) {
        None => {
            let ty = &field.ty;
            quote!(#ty)
        }
        Some((owned, _)) => quote!(#owned),
    }
}

/// What to hand a setter to store the field's value at `value` (a `&field type`).
fn write_arg(ident: &Ident, field: &FieldModel, value: &TokenStream) -> TokenStream {
    match wrapper_names(ident, field) {
        None => value.clone(),
        Some((_, borrowed)) => quote!(&#borrowed(#value)),
    }
}

fn accessors(paths: &Paths, ident: &Ident, field: &FieldModel) -> TokenStream {
    let [get, set, update, reset] = field_methods(&field.ident);
    let (vis, ty, key) = (&field.vis, &field.ty, &field.key);
    let default = default(ident, field);
    let result_ty = paths.result(&quote!(#ty));
    let result_unit = paths.result(&quote!(()));
    let result_bool = paths.result(&quote!(bool));
    let name = key.value();
    let get_doc = format!(
        "The stored `{name}`, or its default if it was never stored.\n\n# Errors\n\n\
         `Error::Field` when the stored value can't be decoded as the field's type (then \
         `{set}` overwrites it and `{reset}` removes it); or a storage error."
    );
    let set_doc = format!("Stores `{name}`.\n\n# Errors\n\nWhen storage fails.");
    let update_doc = format!(
        "Atomically applies `f` to `{name}` (or its default), stores the result and returns \
         it; other writers, in any process, wait. `f` may run more than once if the map has \
         to grow.\n\n# Errors\n\nAs for `{get}`."
    );
    let reset_doc = format!(
        "Removes the stored `{name}`, so that it reads as its default again; returns whether \
         there was one. Works even when the stored value no longer decodes.\n\n# Errors\n\n\
         When storage fails."
    );
    let stored = read(ident, field, &quote!(self.__persistdict_fields));
    let in_tx = read(ident, field, &quote!(__persistdict_tx));
    let value = write_arg(ident, field, &quote!(&value));
    let updated = write_arg(ident, field, &quote!(&__persistdict_value));
    let decoded = decoded_type(ident, field);
    quote! {
        #[doc = #get_doc]
        #vis fn #get(&self) -> #result_ty {
            ::core::result::Result::Ok(#stored.unwrap_or_else(|| -> #ty { #default }))
        }

        #[doc = #set_doc]
        #vis fn #set(&self, value: #ty) -> #result_unit {
            self.__persistdict_fields.set::<_, #decoded>(#key, #value)
        }

        #[doc = #update_doc]
        #vis fn #update(&self, mut f: impl ::core::ops::FnMut(&mut #ty)) -> #result_ty {
            self.__persistdict_fields.write(|__persistdict_tx| {
                let mut __persistdict_value = #in_tx.unwrap_or_else(|| -> #ty { #default });
                f(&mut __persistdict_value);
                __persistdict_tx.set::<_, #decoded>(#key, #updated)?;
                ::core::result::Result::Ok(__persistdict_value)
            })
        }

        #[doc = #reset_doc]
        #vis fn #reset(&self) -> #result_bool {
            self.__persistdict_fields.reset(#key)
        }
    }
}

pub(crate) fn map(model: &MapModel) -> TokenStream {
    let options = &model.options;
    let path = &options.path;
    let paths = Paths::new(options);
    let Paths {
        krate,
        private,
        codec,
    } = &paths;
    let MapModel {
        attrs,
        vis,
        ident,
        key,
        value,
        map,
        ..
    } = model;
    let dict = quote!(#krate::PersistDict<#key, #value, #codec>);
    let runtime_options = paths.options(options);
    let codec_value = paths.codec_value();
    let key_assert = quote_spanned!(key.span()=> #private::assert_key::<#key>(););
    let value_assert = quote_spanned!(value.span()=> #private::assert_value::<#value>(););
    let open = open_methods(
        &paths,
        vis,
        path,
        "the map",
        &quote! {
            #key_assert
            #value_assert
            Self(#private::open_map(__persistdict_path, &#runtime_options, #codec_value)?)
        },
    );
    let type_doc = format!(
        "\n\nA persistent map stored at `{at}`, made by `#[persistent]`: it dereferences to a \
         `PersistDict<K, V>`. Cloning is cheap, and it is `Send + Sync`.",
        at = path.value()
    );
    quote! {
        #(#attrs)*
        #[doc = #type_doc]
        #[derive(::core::clone::Clone, ::core::fmt::Debug)]
        #vis struct #ident(#dict);

        #[allow(dead_code)]
        impl #ident {
            #open

            /// The dict itself.
            #[must_use]
            #vis fn into_inner(self) -> #dict {
                self.0
            }
        }

        // Names the map type as written, so that its import counts as used.
        const _: ::core::marker::PhantomData<#map> = ::core::marker::PhantomData;

        impl ::core::ops::Deref for #ident {
            type Target = #dict;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }

        // `for entry in &map`, as on the dict itself.
        impl<'__persistdict_a> ::core::iter::IntoIterator for &'__persistdict_a #ident {
            type Item = <&'__persistdict_a #dict as ::core::iter::IntoIterator>::Item;
            type IntoIter = <&'__persistdict_a #dict as ::core::iter::IntoIterator>::IntoIter;

            fn into_iter(self) -> Self::IntoIter {
                <&'__persistdict_a #dict as ::core::iter::IntoIterator>::into_iter(&self.0)
            }
        }
    }
}
