//! A procfs/sysfs text file read whole, walked line by line with numbered errors.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::HostInfoError;

/// The text of one procfs or sysfs file and where it came from.
#[derive(Debug)]
pub(crate) struct ProcFile {
    path: PathBuf,
    text: String,
}

impl ProcFile {
    /// Reads the whole file (procfs files report size 0, so no size hint is trusted).
    pub(crate) fn read(path: PathBuf) -> Result<Self, HostInfoError> {
        match fs::read(&path) {
            Ok(bytes) => Ok(Self {
                text: String::from_utf8_lossy(&bytes).into_owned(),
                path,
            }),
            Err(source) => Err(HostInfoError::Read { path, source }),
        }
    }

    /// The whole text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// The lines of the file, numbered from 1.
    pub(crate) fn lines(&self) -> impl Iterator<Item = Line<'_>> {
        self.text.lines().enumerate().map(|(index, text)| Line {
            path: &self.path,
            number: index + 1,
            text,
        })
    }
}

/// One line of a [`ProcFile`], able to name itself in errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    path: &'a Path,
    number: usize,
    pub(crate) text: &'a str,
}

impl Line<'_> {
    /// An error saying this line is malformed, and why.
    pub(crate) fn malformed(&self, reason: impl Into<String>) -> HostInfoError {
        HostInfoError::Malformed {
            path: self.path.to_path_buf(),
            line: self.number,
            reason: reason.into(),
        }
    }

    /// Parses `value` (the field called `field` on this line) as a decimal number.
    pub(crate) fn parse<T: FromStr>(&self, field: &str, value: &str) -> Result<T, HostInfoError> {
        value
            .parse()
            .map_err(|_| self.malformed(format!("{field}: {value:?} is not a number")))
    }

    /// Parses `value` (the field called `field` on this line) as a hexadecimal number.
    pub(crate) fn parse_hex(&self, field: &str, value: &str) -> Result<u64, HostInfoError> {
        u64::from_str_radix(value, 16)
            .map_err(|_| self.malformed(format!("{field}: {value:?} is not a hexadecimal number")))
    }

    /// Parses the `index`th whitespace-separated value of `values`, or 0 if the kernel is too old
    /// to print it.
    pub(crate) fn parse_column(
        &self,
        field: &str,
        values: &[&str],
        index: usize,
    ) -> Result<u64, HostInfoError> {
        values
            .get(index)
            .map_or(Ok(0), |value| self.parse(field, value))
    }
}
