//! Processors: `KeGetCurrentProcessorNumberEx` and `KeQueryActiveProcessorCountEx` for a
//! simulated machine.
//!
//! The host simulates a machine of [`active`] processors: by default as many as the real
//! machine has cores, or the number in the `KS_HOST_PROCESSORS` environment variable (so a test
//! run can play a one-processor or a 64-processor machine on any host), or what a session set
//! with [`set_active`] until it ends. Processors 64 and up are in further groups of 64, as
//! Windows numbers them.
//!
//! Every thread runs on processor 0 until it binds itself to another with [`bind`] (what
//! a kernel thread does with an affinity): the host never moves a thread, so what a test sees is
//! the same on every run and every machine. Tests and benchmarks that play several CPUs bind
//! each thread to a processor of its own. On Windows, a thread below DISPATCH_LEVEL can move
//! to another processor at any instant, right after it asked which one it runs on; code that
//! uses the answer must be correct whatever it is, and the host cannot show otherwise.

use std::{
    cell::Cell,
    io::Write as _,
    sync::{
        OnceLock,
        atomic::{AtomicU32, Ordering},
    },
};

use ks_sys::{PPROCESSOR_NUMBER, PROCESSOR_NUMBER, ULONG, USHORT};

/// Processors of one group.
const GROUP_SIZE: u32 = 64;

/// The count a session set, or 0 for the default.
static SET_BY_SESSION: AtomicU32 = AtomicU32::new(0);

thread_local! {
    static CURRENT: Cell<u32> = const { Cell::new(0) };
}

/// The environment variable that sets the default number of processors.
pub const PROCESSORS_VARIABLE: &str = "KS_HOST_PROCESSORS";

/// The default number of processors: `KS_HOST_PROCESSORS`, or the real core count.
///
/// Ends the process with status 2 and a message naming the variable if `KS_HOST_PROCESSORS`
/// is set to anything but a number from 1 to 1024.
fn default_count() -> u32 {
    static DEFAULT: OnceLock<u32> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let Ok(text) = std::env::var(PROCESSORS_VARIABLE) else {
            return std::thread::available_parallelism()
                .map_or(1, |cores| u32::try_from(cores.get()).unwrap_or(1024).min(1024));
        };
        if let Ok(count @ 1..=1024) = text.trim().parse::<u32>() {
            return count;
        }
        // A misconfigured run, reached from `extern "system"` routines that must not unwind:
        // said plainly and ended, rather than an abort on a panic.
        // Written to the process's stderr directly: a test harness would hold `eprintln!`
        // output back, and the process ends now.
        let _ = writeln!(
            std::io::stderr(),
            "ks-host: {PROCESSORS_VARIABLE}={text:?}: expected a number of processors, 1 to 1024"
        );
        std::process::exit(2)
    })
}

/// Active processors of the simulated machine.
#[must_use]
pub fn active() -> u32 {
    match SET_BY_SESSION.load(Ordering::Relaxed) {
        0 => default_count(),
        count => count,
    }
}

/// Makes the simulated machine have `count` processors until the session ends (tests that
/// depend on how many there are). Pools and allocators read the count when they are created.
///
/// # Panics
///
/// If `count` is 0 or more than 1024.
pub fn set_active(count: u32) {
    assert!((1..=1024).contains(&count), "{count} processors: 1 to 1024");
    SET_BY_SESSION.store(count, Ordering::Relaxed);
}

/// Back to the default count (a session's end).
pub(crate) fn reset() {
    SET_BY_SESSION.store(0, Ordering::Relaxed);
}

/// The processor the calling thread runs on.
#[must_use]
pub fn current() -> u32 {
    CURRENT.with(Cell::get)
}

/// Puts the calling thread back on the processor it ran on before [`bind`] when dropped.
#[derive(Debug)]
#[must_use = "the thread goes back to its previous processor when the guard is dropped"]
pub struct Binding {
    previous: u32,
}

impl Drop for Binding {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
    }
}

/// Moves the calling thread to `processor` until the guard is dropped.
///
/// # Panics
///
/// If the simulated machine has no such processor.
pub fn bind(processor: u32) -> Binding {
    let active = active();
    assert!(processor < active, "processor {processor} of a {active}-processor machine");
    Binding { previous: CURRENT.with(|current| current.replace(processor)) }
}

/// `KeGetCurrentProcessorNumberEx`: the system-wide index of the calling thread's processor,
/// and its group and number in `*ProcNumber` unless that is NULL. Any IRQL.
///
/// # Safety
///
/// `ProcNumber` is NULL or valid for writing a `PROCESSOR_NUMBER`.
// SAFETY: no other symbol of a host process is named `KeGetCurrentProcessorNumberEx`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeGetCurrentProcessorNumberEx(
    ProcNumber: PPROCESSOR_NUMBER,
) -> ULONG {
    let index = current();
    if !ProcNumber.is_null() {
        let number = PROCESSOR_NUMBER {
            Group: USHORT::try_from(index / GROUP_SIZE).unwrap_or(USHORT::MAX),
            Number: u8::try_from(index % GROUP_SIZE).unwrap_or(u8::MAX),
            Reserved: 0,
        };
        // SAFETY: the caller passes NULL or a writable PROCESSOR_NUMBER (checked for NULL).
        unsafe { ProcNumber.write(number) };
    }
    index
}

/// `KeQueryActiveProcessorCountEx`: the active processors of group `GroupNumber`, or of all
/// groups for `ALL_PROCESSOR_GROUPS`; 0 for a group the machine does not have. Any IRQL.
// SAFETY: no other symbol of a host process is named `KeQueryActiveProcessorCountEx`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KeQueryActiveProcessorCountEx(GroupNumber: USHORT) -> ULONG {
    let active = active();
    if u32::from(GroupNumber) == ks_sys::ALL_PROCESSOR_GROUPS {
        return active;
    }
    active.saturating_sub(u32::from(GroupNumber) * GROUP_SIZE).min(GROUP_SIZE)
}
