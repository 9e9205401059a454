//! Implementation detail of [`persistdict`](https://docs.rs/persistdict): its attribute macros.
//!
//! Depend on `persistdict` instead; this crate's API carries no stability guarantee of its own.
