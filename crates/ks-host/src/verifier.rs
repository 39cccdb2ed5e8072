//! Contract violations detected by the host's routines, in the spirit of Driver Verifier: a
//! routine called at too high an IRQL, paged memory touched at DISPATCH_LEVEL, memory freed
//! twice or with the wrong tag. On Windows most of these are bugchecks; here they are recorded
//! so a test can assert on them.

use std::{fmt, sync::Mutex};

use ks_sys::KIRQL;

/// One contract violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The routine whose contract was broken.
    pub routine: &'static str,
    /// The caller's IRQL at the time.
    pub irql: KIRQL,
    /// What was wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at IRQL {}: {}", self.routine, self.irql, self.detail)
    }
}

static VIOLATIONS: Mutex<Vec<Violation>> = Mutex::new(Vec::new());

/// Records a violation by `routine` at the calling thread's IRQL.
pub(crate) fn report(routine: &'static str, detail: String) {
    let irql = crate::irql::current();
    crate::lock(&VIOLATIONS).push(Violation { routine, irql, detail });
}

/// Checks that the caller runs at or below `max`; records a violation otherwise.
pub(crate) fn require_irql_at_most(routine: &'static str, max: KIRQL) -> bool {
    let irql = crate::irql::current();
    if irql > max {
        report(routine, format!("called above its maximum IRQL {max}"));
        return false;
    }
    true
}

/// Every violation recorded so far.
#[must_use]
pub fn violations() -> Vec<Violation> {
    crate::lock(&VIOLATIONS).clone()
}

/// Every violation recorded so far; the record is emptied.
#[must_use]
pub fn take_violations() -> Vec<Violation> {
    std::mem::take(&mut *crate::lock(&VIOLATIONS))
}
