//! The framework as one shared library.
//!
//! Linking this crate makes rustc take `mvlpt_framework` (and candle inside it) from
//! `libmvlpt_dylib.so` instead of statically, in the host binary and in every dynamically
//! loaded plugin alike, so that both see one tensor-id counter and one set of statics.
pub use mvlpt_framework::*;
