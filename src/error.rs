//! The library's error type. Every variant is something a user can act on, so the binary
//! reports it as one line and exits with status 2.

use std::path::{Path, PathBuf};

/// Errors from reading data, configuration and run directories.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory is missing, unreadable or malformed.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A configuration key holds a bad value (the key is named in the message).
    #[error("config: {key}: {message}")]
    Config { key: String, message: String },
    /// A name (task, relation, format, …) that relatent does not know.
    #[error("{0}")]
    Unknown(String),
    /// Input that is well-formed but cannot be used (e.g. too few labelled images).
    #[error("{0}")]
    Invalid(String),
    /// The user asked a run to stop (Ctrl-C); what was done is saved.
    #[error("{0}")]
    Interrupted(String),
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error about `path`.
    pub fn file(path: impl AsRef<Path>, message: impl std::fmt::Display) -> Self {
        Error::File { path: path.as_ref().to_path_buf(), message: message.to_string() }
    }

    /// An error about configuration key `key`.
    pub fn config(key: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Config { key: key.into(), message: message.to_string() }
    }
}
