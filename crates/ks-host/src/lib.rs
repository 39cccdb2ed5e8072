//! User-mode stand-in for the kernel routines that `ks-allocator` imports.
//!
//! The library and the sample driver talk to the kernel only through `ks_sys` imports. This
//! crate defines those imports in an ordinary process, each following the documented contract
//! of the routine it replaces, so the same driver code runs and is tested on any host:
//!
//! - [`pool`]: `ExAllocatePool2`, `ExAllocatePoolWithTag`, `ExFreePoolWithTag` with tags, the
//!   pool's alignment rules, leak accounting ([`pool::live`]) and a failure schedule like Driver
//!   Verifier's low-resources simulation;
//! - [`irql`]: an IRQL per thread, raised and lowered by tests, checked by every routine here
//!   ([`verifier`] collects the violations);
//! - [`debug`]: `DbgPrintEx` output, captured; `DbgBreakPoint` recorded as a violation, with a
//!   switch for whether a debugger is attached (`KdRefreshDebuggerNotPresent`);
//! - `MmGetSystemRoutineAddress` for the routines above, with a switch to pretend a routine does
//!   not exist ([`routines`]);
//! - [`ke`]: kernel timers and DPCs, run on host threads at DISPATCH_LEVEL;
//! - [`processor`]: a simulated machine of several processors (`KeGetCurrentProcessorNumberEx`,
//!   `KeQueryActiveProcessorCountEx`), each thread on processor 0 until it binds itself to
//!   another;
//! - [`dma`]: a physical address space (scattered pool pages, contiguous common buffers),
//!   `IoGetDmaAdapter` with common buffers, the mappings a device may reach, and a bus-master
//!   device's writes checked against them (`MmGetPhysicalAddress`, `MmGetVirtualForPhysical`);
//! - [`ks`]: enough of `KsCreateDefaultAllocatorEx` to drive an allocator's callbacks the way
//!   ks.sys does;
//! - [`property`]: property requests dispatched like `KsPropertyHandler`, with `KsGetPinFromIrp`
//!   and `IoIs32bitProcess`, from user-mode (native or 32-bit) or kernel-mode clients;
//! - [`object`]: a handle table of typed, reference-counted objects, `ObReferenceObjectByHandle`,
//!   `ObfDereferenceObject` and `IoFileObjectType`;
//! - [`avstream`]: a minidriver run from its descriptors as ks.sys runs it: `KsInitializeDriver`,
//!   devices, filter factories, filters and pins with their callbacks, object bags and `KsEdit`,
//!   state steps, the pipe's allocator through `KSPIN_DISPATCH.Allocator`, the leading-edge
//!   stream pointer and `KsPinAttemptProcessing`, completed frames to a consumer.
//!
//! A routine that ks-sys declares but this crate does not define fails to link in a host build:
//! it is absent, not faked.
//!
//! Link this crate into every host binary and test that runs driver code (`extern crate
//! ks_host;` is enough). Tests that check accounting take a [`Session`], which serialises them
//! and checks for leaks and violations at the end.

#![expect(non_snake_case, reason = "the kernel routines and their parameters keep their C names")]

mod irp;
mod session;

pub mod avstream;
pub mod debug;
pub mod dma;
pub mod irql;
pub mod ke;
pub mod ks;
pub mod object;
pub mod pool;
pub mod processor;
pub mod property;
pub mod routines;
pub mod verifier;

pub use session::Session;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a host-state mutex; a panic in another test does not poison the host for the rest.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
