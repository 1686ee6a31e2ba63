//! Per-node failures: each is printed to stderr when it arrives, the other nodes' output is
//! still printed, and the command then exits non-zero without printing anything more.

use std::fmt;

/// Counts the failures a command reported.
#[derive(Debug, Default)]
pub struct Failures {
    count: usize,
}

impl Failures {
    /// Prints `error` to stderr and remembers that the command failed.
    pub fn report(&mut self, error: impl fmt::Display) {
        eprintln!("{error}");
        self.count += 1;
    }

    /// `Ok` if nothing failed, else [`AlreadyReported`].
    pub fn finish(self) -> anyhow::Result<()> {
        match self.count {
            0 => Ok(()),
            count => Err(AlreadyReported { count }.into()),
        }
    }
}

/// A command failed and has already said why on stderr.
#[derive(Debug)]
pub struct AlreadyReported {
    count: usize,
}

impl fmt::Display for AlreadyReported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} error(s) reported above", self.count)
    }
}

impl std::error::Error for AlreadyReported {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_failures_finish_ok() {
        assert!(Failures::default().finish().is_ok());
    }

    #[test]
    fn failures_finish_as_already_reported() {
        let mut failures = Failures::default();
        failures.report("error from node a: boom");
        failures.report("error from node b: boom");
        let error = failures.finish().expect_err("two failures");
        let reported = error.downcast_ref::<AlreadyReported>().expect("type");
        assert_eq!(reported.count, 2);
    }
}
