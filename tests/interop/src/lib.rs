//! Interop test support (being written).
