//! Collects every error found in one macro input, so that all of them are reported at once.

use std::cell::{Cell, RefCell};
use std::fmt::Display;

use quote::ToTokens;

/// The errors found so far. It must be [`finish`](Ctxt::finish)ed: dropping it unfinished
/// would lose errors, and panics (as serde's `Ctxt` does) so that such a path can't ship.
#[derive(Default)]
pub(crate) struct Ctxt {
    errors: RefCell<Option<syn::Error>>,
    finished: Cell<bool>,
}

impl Ctxt {
    /// Records an error spanned on `tokens`.
    pub(crate) fn error(&self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error.
    pub(crate) fn push(&self, error: syn::Error) {
        let mut errors = self.errors.borrow_mut();
        match errors.as_mut() {
            Some(all) => all.combine(error),
            None => *errors = Some(error),
        }
    }

    /// The errors, if there were any.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.finished.set(true);
        self.errors.take().map_or(Ok(()), Err)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        assert!(
            self.finished.get() || std::thread::panicking(),
            "a `Ctxt` was dropped without checking its errors"
        );
    }
}
