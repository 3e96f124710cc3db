//! DIMSE status codes (PS3.4 Annex B.2.3, PS3.7 Annex C) and the one
//! mapping from intake errors to them.

use crate::ingest::IngestError;

pub const SUCCESS: u16 = 0x0000;
/// Refused: Out of Resources (disk full).
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Refused: Out of Resources, subcode: the file could not be written.
pub const OUT_OF_RESOURCES_WRITE: u16 = 0xA701;
/// Refused: Out of Resources, subcode: the index could not be updated.
pub const OUT_OF_RESOURCES_INDEX: u16 = 0xA702;
/// Error: Data Set does not match SOP Class.
pub const DATA_SET_MISMATCH: u16 = 0xA900;
/// Error: Cannot understand.
pub const CANNOT_UNDERSTAND: u16 = 0xC000;
/// Refused: SOP Class not supported.
pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// Invalid SOP Instance.
pub const INVALID_SOP_INSTANCE: u16 = 0x0117;
/// Unrecognized Operation.
pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;

/// A status with the Error Comment that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub comment: Option<String>,
}

impl Status {
    pub const fn success() -> Status {
        Status {
            code: SUCCESS,
            comment: None,
        }
    }

    pub fn failure(code: u16, comment: impl Into<String>) -> Status {
        Status {
            code,
            comment: Some(comment.into()),
        }
    }

    pub fn is_success(&self) -> bool {
        self.code == SUCCESS
    }
}

impl From<&IngestError> for Status {
    fn from(e: &IngestError) -> Status {
        let code = match e {
            IngestError::Unparsable(crate::part10::ParseError::Io(_)) => OUT_OF_RESOURCES_WRITE,
            IngestError::Unparsable(_) => CANNOT_UNDERSTAND,
            IngestError::Missing(_)
            | IngestError::InvalidUid { .. }
            | IngestError::SopClassMismatch { .. }
            | IngestError::SopInstanceMismatch { .. }
            | IngestError::IodMismatch { .. } => DATA_SET_MISMATCH,
            IngestError::UnsupportedSopClass(_) => SOP_CLASS_NOT_SUPPORTED,
            IngestError::DiskFull(_) => OUT_OF_RESOURCES,
            IngestError::Io(_) => OUT_OF_RESOURCES_WRITE,
            IngestError::Index(_) => OUT_OF_RESOURCES_INDEX,
        };
        Status::failure(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_out_of_resources() {
        let e = IngestError::io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(Status::from(&e).code, OUT_OF_RESOURCES);
        let e = IngestError::io(std::io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(Status::from(&e).code, OUT_OF_RESOURCES_WRITE);
        let e = IngestError::Missing("Study Instance UID");
        assert_eq!(
            Status::from(&e),
            Status::failure(DATA_SET_MISMATCH, "Study Instance UID is missing")
        );
    }
}
