//! The Part 10 wrapper: 128-byte preamble, `DICM`, file meta group.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

use dicom_object::meta::{FileMetaTable, FileMetaTableBuilder};

use super::parse::ParseError;

/// pushgate's Implementation Class UID (a UUID-derived 2.25 UID).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.65940425790502455655553142520122154493";
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("PUSHGATE_", env!("CARGO_PKG_VERSION"));

/// What the file meta group says, and where the data set begins.
#[derive(Debug, Clone)]
pub struct Part10Header {
    pub sop_class: String,
    pub sop_instance: String,
    pub transfer_syntax: String,
    pub dataset_offset: u64,
}

fn not_part10(reason: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        offset: 0,
        reason: format!("not a DICOM Part 10 file: {}", reason.into()),
    }
}

/// Reads preamble and file meta group from the start of `file`.
pub fn read_part10_header(file: &File) -> Result<Part10Header, ParseError> {
    let len = file.metadata()?.len();
    if len < 132 {
        return Err(not_part10(format!("only {len} bytes")));
    }
    let mut reader = BufReader::with_capacity(8192, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut preamble = [0u8; 128];
    reader.read_exact(&mut preamble)?;
    let meta = FileMetaTable::from_reader(&mut reader)
        .map_err(|e| not_part10(format!("file meta group: {e}")))?;
    // magic (4) + group length element (12) + the group it measures
    let dataset_offset = 128 + 4 + 12 + u64::from(meta.information_group_length);
    if dataset_offset > len {
        return Err(ParseError::Truncated {
            declared: dataset_offset,
            present: len,
        });
    }
    Ok(Part10Header {
        sop_class: meta.media_storage_sop_class_uid().to_string(),
        sop_instance: meta.media_storage_sop_instance_uid().to_string(),
        transfer_syntax: meta.transfer_syntax().to_string(),
        dataset_offset,
    })
}

/// Writes preamble and a file meta group built from what the sender told us
/// (C-STORE command and presentation context); returns its length, which is
/// where the data set will begin.
pub fn write_part10_header(
    out: &mut impl Write,
    sop_class: &str,
    sop_instance: &str,
    transfer_syntax: &str,
    source_ae: &str,
) -> io::Result<u64> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME)
        .source_application_entity_title(source_ae)
        .build()
        .map_err(io::Error::other)?;
    let mut bytes = Vec::with_capacity(512);
    bytes.extend_from_slice(&[0u8; 128]);
    bytes.extend_from_slice(b"DICM");
    meta.write(&mut bytes).map_err(io::Error::other)?;
    out.write_all(&bytes)?;
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_offset_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dcm");
        let mut file = File::create(&path).unwrap();
        let len = write_part10_header(
            &mut file,
            "1.2.840.10008.5.1.4.1.1.2",
            "1.2.3.4",
            "1.2.840.10008.1.2.1",
            "CT01",
        )
        .unwrap();
        file.write_all(b"dataset").unwrap();
        drop(file);
        let header = read_part10_header(&File::open(&path).unwrap()).unwrap();
        assert_eq!(header.dataset_offset, len);
        assert_eq!(header.sop_instance, "1.2.3.4");
        assert_eq!(header.transfer_syntax, "1.2.840.10008.1.2.1");
        assert_eq!(&std::fs::read(&path).unwrap()[len as usize..], b"dataset");
    }

    #[test]
    fn refuses_files_without_dicm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.txt");
        std::fs::write(&path, vec![b'x'; 300]).unwrap();
        let err = read_part10_header(&File::open(&path).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("not a DICOM Part 10 file"),
            "{err}"
        );
    }
}
