//! Numbered check results, printed as they come and counted.

use core::fmt;

/// Why a check failed: what was compared, and the two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// What was compared.
    pub what: &'static str,
    /// The value the check expected.
    pub expected: u64,
    /// The value it found.
    pub actual: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {:#x}, got {:#x}", self.what, self.expected, self.actual)
    }
}

/// The result of one check.
pub type Outcome = Result<(), Failure>;

/// `Ok` if `actual == expected`, a [`Failure`] naming `what` otherwise.
///
/// # Errors
///
/// The values differ.
pub fn equal(what: &'static str, expected: u64, actual: u64) -> Outcome {
    if expected == actual { Ok(()) } else { Err(Failure { what, expected, actual }) }
}

/// `Ok` if `condition` holds, a [`Failure`] naming `what` (expected 1, got 0) otherwise.
///
/// # Errors
///
/// The condition is false.
pub fn holds(what: &'static str, condition: bool) -> Outcome {
    equal(what, 1, u64::from(condition))
}

/// Counts of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Checks that passed.
    pub passed: u32,
    /// Checks that failed.
    pub failed: u32,
}

/// Where the lines go.
enum Sink<'a> {
    /// `DbgPrintEx`, through the library's debug output.
    Debugger,
    /// A caller's function (a test collects the lines).
    Function(&'a mut dyn FnMut(fmt::Arguments<'_>)),
}

/// Where each check's line goes, and the running counts.
pub struct Report<'a> {
    sink: Sink<'a>,
    summary: Summary,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report").field("summary", &self.summary).finish_non_exhaustive()
    }
}

impl Report<'static> {
    /// A report printed with `DbgPrintEx` (error level, so that a debugger shows it without a
    /// filter change), each line prefixed `ks-selftest: `. IRQL <= DIRQL.
    #[must_use]
    pub fn to_debugger() -> Self {
        Report { sink: Sink::Debugger, summary: Summary::default() }
    }
}

impl<'a> Report<'a> {
    /// A report whose lines go to `sink`.
    pub fn new(sink: &'a mut dyn FnMut(fmt::Arguments<'_>)) -> Self {
        Report { sink: Sink::Function(sink), summary: Summary::default() }
    }

    fn line(&mut self, line: fmt::Arguments<'_>) {
        match &mut self.sink {
            Sink::Debugger => {
                ks_allocator::debug_print_as("ks-selftest", ks_sys::DPFLTR_ERROR_LEVEL, line);
            }
            Sink::Function(sink) => sink(line),
        }
    }

    /// Records and prints the outcome of check `name`.
    pub fn check(&mut self, name: fmt::Arguments<'_>, outcome: Outcome) {
        let number = self.summary.passed + self.summary.failed + 1;
        match outcome {
            Ok(()) => {
                self.summary.passed += 1;
                self.line(format_args!("ok   {number:2} {name}"));
            }
            Err(failure) => {
                self.summary.failed += 1;
                self.line(format_args!("FAIL {number:2} {name}: {failure}"));
            }
        }
    }

    /// Prints a line that is not a check.
    pub fn note(&mut self, line: fmt::Arguments<'_>) {
        self.line(line);
    }

    /// Prints `N passed, M failed` and returns the counts.
    #[must_use = "the summary says whether every check passed"]
    pub fn finish(mut self) -> Summary {
        let Summary { passed, failed } = self.summary;
        self.line(format_args!("{passed} passed, {failed} failed"));
        self.summary
    }
}
