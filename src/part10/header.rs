//! The Part 10 wrapper: 128-byte preamble, `DICM`, file meta group.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

use dicom_object::meta::{FileMetaTable, FileMetaTableBuilder};

use super::read::ParseError;

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
    /// (0002,0016): who sent it, as pushgate records the calling AE.
    pub source_ae: Option<String>,
}

fn not_part10(reason: impl Into<String>) -> ParseError {
    ParseError::Malformed {
        offset: 0,
        reason: format!("not a DICOM Part 10 file: {}", reason.into()),
    }
}

/// Largest file meta group accepted (they are a few hundred bytes).
const MAX_META_GROUP: u32 = 64 * 1024;

/// Reads preamble and file meta group from the start of `file`. The group
/// is read whole (bounded) and its element lengths are checked against it
/// before anything is decoded: a decoder allocates declared lengths first.
pub fn read_part10_header(file: &File) -> Result<Part10Header, ParseError> {
    let len = file.metadata()?.len();
    if len < 144 {
        return Err(not_part10(format!("only {len} bytes")));
    }
    let mut reader = BufReader::with_capacity(8192, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 144];
    reader.read_exact(&mut head)?;
    if &head[128..132] != b"DICM" {
        return Err(not_part10("no DICM prefix at byte 128"));
    }
    // (0002,0000) UL, explicit VR little endian: tag, "UL", length 4, value
    if head[132..140] != [0x02, 0x00, 0x00, 0x00, b'U', b'L', 0x04, 0x00] {
        return Err(not_part10(
            "file meta group does not start with its group length",
        ));
    }
    let group_length = u32::from_le_bytes([head[140], head[141], head[142], head[143]]);
    if group_length > MAX_META_GROUP {
        return Err(not_part10(format!(
            "file meta group length {group_length} is implausible"
        )));
    }
    let dataset_offset = 144 + u64::from(group_length);
    if dataset_offset > len {
        return Err(ParseError::Truncated {
            declared: dataset_offset,
            present: len,
        });
    }
    let mut group = Vec::with_capacity(group_length as usize + 16);
    group.extend_from_slice(b"DICM");
    group.extend_from_slice(&head[132..144]);
    let body_start = group.len();
    group.resize(body_start + group_length as usize, 0);
    reader.read_exact(&mut group[body_start..])?;
    check_meta_lengths(&group[body_start..])?;
    let meta = FileMetaTable::from_reader(&group[..])
        .map_err(|e| not_part10(format!("file meta group: {e}")))?;
    Ok(Part10Header {
        sop_class: meta.media_storage_sop_class_uid().to_string(),
        sop_instance: meta.media_storage_sop_instance_uid().to_string(),
        transfer_syntax: meta.transfer_syntax().to_string(),
        dataset_offset,
        source_ae: meta
            .source_application_entity_title()
            .map(|ae| ae.trim_matches([' ', '\0']).to_string())
            .filter(|ae| !ae.is_empty()),
    })
}

/// Walks explicit-VR element headers of group 0002 and checks that each
/// value fits in the group.
fn check_meta_lengths(group: &[u8]) -> Result<(), ParseError> {
    let mut pos = 0usize;
    while pos < group.len() {
        let header = group
            .get(pos..pos + 8)
            .ok_or_else(|| not_part10("file meta group ends inside an element header"))?;
        if header[0..2] != [0x02, 0x00] {
            return Err(not_part10(
                "file meta group length does not match its elements",
            ));
        }
        let (length, header_len) = match &header[4..6] {
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN"
            | b"UR" | b"UT" | b"UV" => {
                let h = group
                    .get(pos..pos + 12)
                    .ok_or_else(|| not_part10("file meta group ends inside an element header"))?;
                (u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize, 12)
            }
            _ => (u16::from_le_bytes([header[6], header[7]]) as usize, 8),
        };
        pos = (pos + header_len)
            .checked_add(length)
            .filter(|end| *end <= group.len())
            .ok_or_else(|| not_part10("a file meta element is longer than its group"))?;
    }
    Ok(())
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
    fn refuses_lying_meta_groups_without_allocating_their_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dcm");
        let mut file = File::create(&path).unwrap();
        write_part10_header(&mut file, "1.2.3", "1.2.3.4", "1.2.840.10008.1.2.1", "X").unwrap();
        drop(file);
        let good = std::fs::read(&path).unwrap();
        // an element inside the group claiming 4 GiB
        let mut bad = good.clone();
        let ts = bad
            .windows(4)
            .position(|w| w == [0x02, 0x00, 0x10, 0x00])
            .unwrap();
        bad[ts + 4..ts + 6].copy_from_slice(b"UN");
        bad.splice(ts + 6..ts + 8, [0, 0, 0xF0, 0xFF, 0xFF, 0xFF]);
        std::fs::write(&path, &bad).unwrap();
        let err = read_part10_header(&File::open(&path).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("not a DICOM Part 10 file"),
            "{err}"
        );
        // a group length pointing past the end of the file
        let mut bad = good.clone();
        bad[140..144].copy_from_slice(&60_000u32.to_le_bytes());
        std::fs::write(&path, &bad).unwrap();
        assert!(
            read_part10_header(&File::open(&path).unwrap())
                .unwrap_err()
                .is_truncation()
        );
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
