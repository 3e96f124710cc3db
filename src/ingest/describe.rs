//! From a parsed data set to an index entry: the checks a data set must
//! pass (UIDs, SOP class, IOD) and the attributes the index keeps.

use std::fs::File;
use std::path::Path;
use std::time::UNIX_EPOCH;

use dicom_dictionary_std::tags;

use super::{Declared, IngestError, ParseError, attrs, metadata, read_part10_header, sop_classes};
use crate::part10::{Parsed, parse_dataset};
use crate::store::{IndexEntry, InstanceKey, InstanceRecord, Source, Timestamp, Uid};

/// How the file got here, when it was received, how big it is.
pub struct Provenance {
    pub source: Source,
    pub received_at: Timestamp,
    pub size: u64,
    pub mtime_ns: u64,
    pub crc32: Option<u32>,
}

/// CRC-32 of a whole file, read in large chunks.
pub fn crc32_of(file: &File) -> std::io::Result<u32> {
    use std::io::Read;
    let mut reader = file;
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0; 1 << 20];
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0))?;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Modification time in nanoseconds (with the size, what reconcile uses to
/// tell a changed file from the indexed one).
pub fn mtime_ns(file: &File) -> std::io::Result<u64> {
    let modified = file.metadata()?.modified()?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64))
}

fn uid(attribute: &'static str, value: &str) -> Result<Uid, IngestError> {
    if value.is_empty() {
        return Err(IngestError::Missing(attribute));
    }
    Uid::parse(value).map_err(|cause| IngestError::InvalidUid { attribute, cause })
}

/// Parses a Part 10 file already in the store (reconcile, reindex). Its
/// time is its modification time; its source the calling AE its meta group
/// recorded, if any.
pub fn describe_file(path: &Path) -> Result<IndexEntry, IngestError> {
    let file = File::open(path).map_err(IngestError::io)?;
    let size = file.metadata().map_err(IngestError::io)?.len();
    let header = read_part10_header(&file)?;
    let parsed = parse_dataset(&file, header.dataset_offset, &header.transfer_syntax)?;
    let mtime_ns = mtime_ns(&file).map_err(IngestError::io)?;
    let declared = Declared {
        sop_class: header.sop_class.clone(),
        sop_instance: header.sop_instance.clone(),
    };
    let source = match header.source_ae {
        Some(calling_ae) => Source::Dimse {
            calling_ae,
            peer: String::new(),
        },
        None => Source::Reindex,
    };
    let provenance = Provenance {
        source,
        received_at: Timestamp(mtime_ns / 1_000_000),
        size,
        mtime_ns,
        crc32: Some(crc32_of(&file).map_err(IngestError::io)?),
    };
    entry_from(
        parsed,
        header.dataset_offset,
        &header.transfer_syntax,
        Some(&declared),
        provenance,
    )
}

/// Checks a parsed data set against what was declared for it and what its
/// SOP class requires, and describes it for the index.
pub fn entry_from(
    parsed: Parsed,
    dataset_offset: u64,
    transfer_syntax: &str,
    declared: Option<&Declared>,
    provenance: Provenance,
) -> Result<IndexEntry, IngestError> {
    let obj = &parsed.object;
    let sop_class = attrs::text(obj, tags::SOP_CLASS_UID);
    let sop_instance = attrs::text(obj, tags::SOP_INSTANCE_UID);
    if sop_class.is_empty() {
        return Err(IngestError::Missing("SOP Class UID"));
    }
    let sop = uid("SOP Instance UID", &sop_instance)?;
    if let Some(declared) = declared {
        if declared.sop_class.trim_end_matches(['\0', ' ']) != sop_class {
            return Err(IngestError::SopClassMismatch {
                declared: declared.sop_class.clone(),
                found: sop_class,
            });
        }
        if declared.sop_instance.trim_end_matches(['\0', ' ']) != sop_instance {
            return Err(IngestError::SopInstanceMismatch {
                declared: declared.sop_instance.clone(),
                found: sop_instance,
            });
        }
    }
    if !sop_classes::is_kept(&sop_class) {
        return Err(IngestError::UnsupportedSopClass(sop_class));
    }
    sop_classes::check_iod(&sop_class, obj, &parsed.layout).map_err(|reason| {
        IngestError::IodMismatch {
            sop_class: sop_class.clone(),
            reason,
        }
    })?;
    let key = InstanceKey {
        study: uid(
            "Study Instance UID",
            &attrs::text(obj, tags::STUDY_INSTANCE_UID),
        )?,
        series: uid(
            "Series Instance UID",
            &attrs::text(obj, tags::SERIES_INSTANCE_UID),
        )?,
        sop,
    };
    let metadata_json = metadata::to_json(obj, &parsed.layout).map_err(|e| {
        IngestError::Unparsable(ParseError::Malformed {
            offset: 0,
            reason: format!("cannot express as DICOM JSON: {e}"),
        })
    })?;
    Ok(IndexEntry {
        patient: attrs::patient(obj),
        study: attrs::study(obj),
        series: attrs::series(obj),
        record: InstanceRecord {
            attrs: attrs::instance(obj),
            transfer_syntax: transfer_syntax.to_string(),
            size: provenance.size,
            mtime_ns: provenance.mtime_ns,
            dataset_offset,
            crc32: provenance.crc32,
            received_at: provenance.received_at,
            source: provenance.source,
            layout: parsed.layout,
        },
        metadata_json,
        key,
    })
}
