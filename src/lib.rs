//! ks-allocator
