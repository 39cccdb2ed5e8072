//! User-mode stand-in for the kernel routines that `ks-allocator` imports.
//!
//! The library and the sample driver talk to the kernel only through `ks_sys` imports. This
//! crate will define those imports in user mode (pool allocation with tags and leak tracking,
//! a per-thread IRQL with Driver-Verifier-style checks, `DbgPrint` capture, the AVStream object
//! model the sample driver needs), each following the documented contract of the routine it
//! replaces, so the same code runs and is tested on any host.
//!
//! **Status: skeleton.** It defines no routine yet: nothing the library calls today needs the
//! kernel. Routines arrive with the code that imports them (frame pools and the allocator
//! dispatch table first). A routine this crate does not define fails to link in a host build
//! instead of being faked.

#![forbid(unsafe_code)]
