//! `DbgPrintEx` output, captured; `DbgBreakPoint` and `KdRefreshDebuggerNotPresent`.
//!
//! The routine itself is C (`csrc/dbgprint.c`, variadic); it formats the message and hands the
//! text to [`ks_host_debug_output`], which records it here. Set the environment variable
//! `KS_HOST_ECHO=1` to also print every message to standard error.

use std::{
    ffi::c_char,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use ks_sys::BOOLEAN;

/// One `DbgPrintEx` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugRecord {
    /// `ComponentId` (`DPFLTR_*_ID`).
    pub component: u32,
    /// `Level` (`DPFLTR_*_LEVEL`).
    pub level: u32,
    /// The formatted text, at most 511 bytes, as the kernel truncates it.
    pub text: String,
}

static OUTPUT: Mutex<Vec<DebugRecord>> = Mutex::new(Vec::new());

/// Receives the text `DbgPrintEx` formatted.
///
/// # Safety
///
/// Only the C `DbgPrintEx` calls it, with `text` pointing at `length` readable bytes.
// SAFETY: no other symbol of a host process is named `ks_host_debug_output`; the C file declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ks_host_debug_output(
    component: u32,
    level: u32,
    text: *const c_char,
    length: usize,
) {
    let bytes = if text.is_null() || length == 0 {
        &[][..]
    } else {
        // SAFETY: the C caller passes its buffer and the number of bytes it formatted into it.
        unsafe { std::slice::from_raw_parts(text.cast::<u8>(), length) }
    };
    let text = String::from_utf8_lossy(bytes).into_owned();
    if std::env::var_os("KS_HOST_ECHO").is_some() {
        eprint!("{text}");
    }
    crate::lock(&OUTPUT).push(DebugRecord { component, level, text });
}

/// Every message so far.
#[must_use]
pub fn output() -> Vec<DebugRecord> {
    crate::lock(&OUTPUT).clone()
}

/// Every message so far; the record is emptied.
#[must_use]
pub fn take_output() -> Vec<DebugRecord> {
    std::mem::take(&mut *crate::lock(&OUTPUT))
}

static DEBUGGER_DETACHED: AtomicBool = AtomicBool::new(false);

/// Simulates a kernel debugger attached (the default) or not: what
/// `KdRefreshDebuggerNotPresent` reports.
pub fn set_debugger_attached(attached: bool) {
    DEBUGGER_DETACHED.store(!attached, Ordering::SeqCst);
}

/// Resets the debugger to attached (session start and end).
pub(crate) fn reset() {
    set_debugger_attached(true);
}

/// `KdRefreshDebuggerNotPresent`: `FALSE` (0) while the simulated debugger is attached. Any IRQL.
// SAFETY: no other symbol of a host process is named `KdRefreshDebuggerNotPresent`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KdRefreshDebuggerNotPresent() -> BOOLEAN {
    BOOLEAN::from(DEBUGGER_DETACHED.load(Ordering::SeqCst))
}

/// `DbgBreakPoint`: a stop in the debugger is recorded as a violation (naming the last debug
/// message, which is normally why the driver stopped); without a debugger attached, the
/// unhandled breakpoint exception is recorded as the bugcheck it would be. Any IRQL.
// SAFETY: no other symbol of a host process is named `DbgBreakPoint`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn DbgBreakPoint() {
    let last = crate::lock(&OUTPUT).last().map(|record| record.text.trim_end().to_owned());
    let last = last.unwrap_or_else(|| "no debug message before it".to_owned());
    if DEBUGGER_DETACHED.load(Ordering::SeqCst) {
        crate::verifier::report(
            "DbgBreakPoint",
            format!(
                "breakpoint without a kernel debugger: KMODE_EXCEPTION_NOT_HANDLED bugcheck ({last})"
            ),
        );
    } else {
        crate::verifier::report("DbgBreakPoint", format!("stopped in the debugger: {last}"));
    }
}

/// `KeBugCheckEx`: what a driver calls when it cannot go on (wdk-panic's panic handler does, with
/// the code `'RPNC'`). The machine would stop; the host prints the code and the four parameters
/// as a debugger's `!analyze` would show them and ends the process (a panic cannot unwind out of
/// an `extern "system"` function), so the test run fails with them on its standard error. Any
/// IRQL.
// SAFETY: no other symbol of a host process is named `KeBugCheckEx`; drivers declare it with
// exactly this signature (ULONG code, four ULONG_PTR parameters, no return).
#[unsafe(no_mangle)]
pub extern "system" fn KeBugCheckEx(
    BugCheckCode: ks_sys::ULONG,
    BugCheckParameter1: ks_sys::ULONG_PTR,
    BugCheckParameter2: ks_sys::ULONG_PTR,
    BugCheckParameter3: ks_sys::ULONG_PTR,
    BugCheckParameter4: ks_sys::ULONG_PTR,
) -> ! {
    let text = format!(
        "KeBugCheckEx: bug check {BugCheckCode:#010X} ({BugCheckParameter1:#x}, \
         {BugCheckParameter2:#x}, {BugCheckParameter3:#x}, {BugCheckParameter4:#x})"
    );
    eprintln!("ks-host: {text}");
    std::process::abort()
}
