//! `Read`: the bytes of one regular file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::OFlag;

use crate::tree::Kind;
use crate::{FileBrowseError, Roots};

/// The size of the chunks [`FileReader::into_chunks`] yields.
pub const READ_CHUNK_SIZE: usize = 64 * 1024;

/// An open regular file, read to its end whatever size `stat` claims (procfs files say 0).
#[derive(Debug)]
pub struct FileReader {
    file: File,
    virtual_path: String,
}

impl Roots {
    /// Opens the regular file at `path` for reading. Directories, devices, pipes and sockets
    /// are refused with [`FileBrowseError::NotRegularFile`]; a pipe is never opened, so a reader
    /// cannot hang on one.
    pub fn read(&self, path: &str) -> Result<FileReader, FileBrowseError> {
        let node = self.resolve(path)?;
        let virtual_path = node.virt.to_string();
        let not_regular = || FileBrowseError::NotRegularFile {
            path: virtual_path.clone(),
        };
        let Some(real) = node.real() else {
            return Err(not_regular());
        };
        let stat = node
            .stat()
            .map_err(|source| FileBrowseError::from_io(virtual_path.clone(), source))?;
        if stat.kind != Kind::Regular {
            return Err(not_regular());
        }
        // O_NOFOLLOW and O_NONBLOCK keep a file swapped for a symlink or a fifo since the check
        // from being followed or blocking; fstat then re-checks what was opened.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
            .open(real)
            .map_err(|source| FileBrowseError::from_io(virtual_path.clone(), source))?;
        let opened = file
            .metadata()
            .map_err(|source| FileBrowseError::from_io(virtual_path.clone(), source))?;
        if !opened.is_file() {
            return Err(not_regular());
        }
        Ok(FileReader { file, virtual_path })
    }
}

impl FileReader {
    /// The virtual path the file was opened as.
    pub fn virtual_path(&self) -> &str {
        &self.virtual_path
    }

    /// The rest of the file as chunks of at most [`READ_CHUNK_SIZE`] bytes, each read error
    /// naming the virtual path. The iterator ends after the first error.
    pub fn into_chunks(self) -> FileChunks {
        FileChunks { reader: Some(self) }
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

/// The chunks of a [`FileReader`], see [`FileReader::into_chunks`].
#[derive(Debug)]
pub struct FileChunks {
    reader: Option<FileReader>,
}

impl Iterator for FileChunks {
    type Item = Result<Vec<u8>, FileBrowseError>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_mut()?;
        let mut chunk = vec![0; READ_CHUNK_SIZE];
        loop {
            match reader.file.read(&mut chunk) {
                Ok(0) => {
                    self.reader = None;
                    return None;
                }
                Ok(filled) => {
                    chunk.truncate(filled);
                    return Some(Ok(chunk));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    let path = reader.virtual_path.clone();
                    self.reader = None;
                    return Some(Err(FileBrowseError::Io { path, source }));
                }
            }
        }
    }
}
