//! The store's error, and how it maps onto [`vigil_core::ErrorKind`].

use vigil_core::ErrorKind;

/// What can go wrong in the LMDB store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LMDB or heed failed.
    #[error("LMDB: {op}: {source}")]
    Lmdb {
        /// What the store was doing.
        op: &'static str,
        /// heed's error.
        #[source]
        source: heed::Error,
    },
    /// A stored value could not be decoded or encoded.
    #[error("record codec ({what}): {source}")]
    Codec {
        /// Which record.
        what: String,
        /// postcard's error.
        #[source]
        source: postcard::Error,
    },
    /// The store on disk was written by a different version of Vigil.
    #[error(
        "store schema version {found} is not supported by this vigil (it reads version {supported}); \
         use the vigil release that wrote it, or start with an empty data directory"
    )]
    SchemaVersion {
        /// Version found on disk.
        found: u32,
        /// Version this build reads and writes.
        supported: u32,
    },
    /// The caller passed a value that can never be valid.
    #[error("{0}")]
    Invalid(String),
    /// The store was closed, or its writer thread died.
    #[error("store is closed")]
    Closed,
    /// Opening the store's directory failed.
    #[error("cannot open store at {path}: {source}")]
    Open {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Lmdb { source, .. } => match source {
                // A full map is grown by the writer; seeing it here means growing failed.
                heed::Error::Mdb(heed::MdbError::MapFull) => ErrorKind::ResourceExhausted,
                heed::Error::Mdb(heed::MdbError::Corrupted)
                | heed::Error::Mdb(heed::MdbError::PageNotFound)
                | heed::Error::Mdb(heed::MdbError::VersionMismatch)
                | heed::Error::Mdb(heed::MdbError::Invalid) => ErrorKind::DataLoss,
                heed::Error::Mdb(heed::MdbError::ReadersFull) => ErrorKind::ResourceExhausted,
                // Disk errors (ENOSPC, EIO) surface as I/O errors.
                heed::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                    ErrorKind::ResourceExhausted
                }
                _ => ErrorKind::Internal,
            },
            // A value we wrote and cannot read back is damaged data.
            Error::Codec { .. } => ErrorKind::DataLoss,
            Error::SchemaVersion { .. } => ErrorKind::FailedPrecondition,
            Error::Invalid(_) => ErrorKind::InvalidArgument,
            Error::Closed => ErrorKind::Unavailable,
            Error::Open { .. } => ErrorKind::Unavailable,
        }
    }

    pub(crate) fn lmdb(op: &'static str) -> impl FnOnce(heed::Error) -> Error {
        move |source| Error::Lmdb { op, source }
    }

    pub(crate) fn is_map_full(&self) -> bool {
        matches!(
            self,
            Error::Lmdb {
                source: heed::Error::Mdb(heed::MdbError::MapFull),
                ..
            }
        )
    }
}

impl From<Error> for vigil_core::Error {
    fn from(e: Error) -> Self {
        vigil_core::Error::new(e.kind(), e.to_string()).with_source(e)
    }
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
