//! pyrandom (in progress).
