//! A DICOM file-set (PS3.10 section 8, PS3.3 Annex F) inside an archive:
//! `DICOMDIR` at the root, `README.TXT`, and every instance under `DICOM/`
//! with a PS3.10 file ID, so that the unzipped download imports like a CD.
//!
//! File IDs follow the layout CD burners have made familiar:
//! `DICOM/PAnnnnnn/STnnnnnn/SEnnnnnn/IMnnnnnn` (patient, study, series,
//! instance; numbered from 0 in directory order). Components are 8
//! characters of A-Z and 0-9, 5 levels: within PS3.10 8.2 and ISO 9660.
//!
//! The directory is written here with a small explicit VR little endian
//! encoder: every item and sequence has a defined length, so the offsets
//! PS3.3 F.3.2.2 asks for (bytes from the first byte of the file, preamble
//! included, to the item tag of a record) follow from the encoded lengths
//! alone. Record keys come from the DICOM JSON pushgate keeps per instance.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::PackageError;
use super::zip::{Archive, Content, Entry, civil_from_days, crc32_of_file};
use crate::store::Timestamp;

mod encode;
mod keys;

use encode::{Element, tag_key};
use keys::{RecordKind, record_keys};

/// Media Storage Directory Storage.
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";
const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
/// Highest number a file ID component holds (two letters, six digits).
const MAX_PER_LEVEL: usize = 1_000_000;

pub struct FileSetInstance {
    pub path: PathBuf,
    pub size: u64,
    /// CRC-32 of the file if known; computed (by reading it) otherwise.
    pub crc32: Option<u32>,
    pub modified: Timestamp,
    pub transfer_syntax: String,
    /// The instance's DICOM JSON (PS3.18 F.2) as pushgate stores it at
    /// intake (`IndexEntry::metadata_json`, bulk values as `BulkDataURI`
    /// placeholders).
    pub metadata: Value,
}

/// A DICOMDIR and where it puts each instance.
#[derive(Debug)]
pub struct Directory {
    /// The DICOMDIR file (Part 10, Explicit VR Little Endian).
    pub bytes: Vec<u8>,
    /// In directory order: index into the instances given, and the path of
    /// its file in the file-set ('/'-separated). An instance whose SOP
    /// Instance UID occurred before is left out.
    pub files: Vec<(usize, String)>,
}

/// Drops the top-level elements of an instance's DICOM JSON that no
/// directory record reads: what [`directory_metadata`] builds, for tests
/// to compare with.
#[cfg(test)]
pub fn keep_directory_keys(metadata: &mut Value) {
    if let Value::Object(map) = metadata {
        map.retain(|key, _| u32::from_str_radix(key, 16).is_ok_and(keys::read_by_directory));
    }
}

/// An instance's stored DICOM JSON, read for the directory: only the
/// top-level elements a directory record reads are built, the others are
/// skipped while parsing. A download lays out every instance of a study at
/// once; building whole metadata for each (and dropping most of it) left
/// glibc's heap fragmented at 20 MB per concurrent download.
pub fn directory_metadata(json: &[u8]) -> serde_json::Result<Value> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Keys;

    impl<'de> Visitor<'de> for Keys {
        type Value = serde_json::Map<String, Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a DICOM JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = serde_json::Map::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if u32::from_str_radix(&key, 16).is_ok_and(keys::read_by_directory) {
                    kept.insert(key.into_owned(), map.next_value::<Value>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(kept)
        }
    }

    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let kept = deserializer.deserialize_map(Keys)?;
    deserializer.end()?;
    Ok(Value::Object(kept))
}

/// The file-set as an archive: `DICOMDIR`, `README.TXT` (`readme` as is)
/// and the instance files. Blocking: computes the CRC-32 of every file
/// whose CRC is not given. The same instances give the same bytes, so a
/// download can resume with a later request.
pub fn file_set(
    instances: Vec<FileSetInstance>,
    readme: String,
    file_set_id: &str,
) -> Result<Archive, PackageError> {
    Archive::new(file_set_entries(instances, readme, file_set_id)?)
}

/// The entries of [`file_set`], for an archive that carries more (the
/// relay package adds its manifest).
pub fn file_set_entries(
    instances: Vec<FileSetInstance>,
    readme: String,
    file_set_id: &str,
) -> Result<Vec<Entry>, PackageError> {
    let directory = dicomdir(&instances, file_set_id)?;
    // the newest instance dates the files made here: deterministic
    let modified = instances
        .iter()
        .map(|i| i.modified)
        .max()
        .unwrap_or(Timestamp(0));
    let mut entries = Vec::with_capacity(directory.files.len() + 2);
    entries.push(Entry::bytes("DICOMDIR", directory.bytes, modified));
    entries.push(Entry::bytes("README.TXT", readme.into_bytes(), modified));
    let mut slots: Vec<Option<FileSetInstance>> = instances.into_iter().map(Some).collect();
    for (index, name) in directory.files {
        let Some(instance) = slots.get_mut(index).and_then(Option::take) else {
            continue;
        };
        let crc32 = match instance.crc32 {
            Some(crc) => crc,
            None => crc32_of_file(&instance.path).map_err(|source| PackageError::Read {
                path: instance.path.clone(),
                source,
            })?,
        };
        entries.push(Entry {
            name,
            content: Content::File {
                path: instance.path,
            },
            size: instance.size,
            crc32,
            modified: instance.modified,
        });
    }
    Ok(entries)
}

/// The DICOMDIR of `instances`: PATIENT, STUDY, SERIES and one leaf record
/// per instance (IMAGE, SR DOCUMENT, PRESENTATION, … by SOP class).
pub fn dicomdir(
    instances: &[FileSetInstance],
    file_set_id: &str,
) -> Result<Directory, PackageError> {
    check_file_set_id(file_set_id)?;
    let described = instances
        .iter()
        .map(Described::new)
        .collect::<Result<Vec<_>, _>>()?;
    let tree = Tree::build(&described)?;

    let mut records = Vec::new();
    let mut files = Vec::with_capacity(described.len());
    let mut roots = Vec::with_capacity(tree.patients.len());
    for (p, patient) in tree.patients.iter().enumerate() {
        let first = &described[patient.first];
        let patient_record = records.len();
        roots.push(patient_record);
        records.push(Record::new(
            "PATIENT",
            record_keys(RecordKind::Patient, first, p + 1)?,
        ));
        for (s, study) in patient.studies.iter().enumerate() {
            let first = &described[study.first];
            let study_record = records.len();
            records[patient_record].children.push(study_record);
            records.push(Record::new(
                "STUDY",
                record_keys(RecordKind::Study, first, s + 1)?,
            ));
            for (r, series) in study.series.iter().enumerate() {
                let first = &described[series.first];
                let series_record = records.len();
                records[study_record].children.push(series_record);
                records.push(Record::new(
                    "SERIES",
                    record_keys(RecordKind::Series, first, r + 1)?,
                ));
                for (i, &index) in series.instances.iter().enumerate() {
                    let d = &described[index];
                    let file_id = [
                        "DICOM".to_string(),
                        format!("PA{p:06}"),
                        format!("ST{s:06}"),
                        format!("SE{r:06}"),
                        format!("IM{i:06}"),
                    ];
                    let kind = RecordKind::of_sop_class(&d.sop_class);
                    let mut elements = vec![
                        Element::strings(0x0004_1500, *b"CS", &file_id),
                        Element::uid(0x0004_1510, &d.sop_class),
                        Element::uid(0x0004_1511, &d.sop_instance),
                        Element::uid(0x0004_1512, &d.transfer_syntax),
                    ];
                    elements.extend(record_keys(kind, d, i + 1)?);
                    let leaf = records.len();
                    records[series_record].children.push(leaf);
                    records.push(Record::new(kind.name(), elements));
                    files.push((index, file_id.join("/")));
                }
            }
        }
    }
    let bytes = encode_dicomdir(records, &roots, file_set_id, &files, instances)?;
    Ok(Directory { bytes, files })
}

fn check_file_set_id(id: &str) -> Result<(), PackageError> {
    let ok = id.len() <= 16
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PackageError::InvalidFileSetId(id.to_string()))
    }
}

/// What the directory needs of one instance, read from its DICOM JSON.
pub(super) struct Described<'a> {
    pub path: &'a std::path::Path,
    pub meta: &'a Map<String, Value>,
    pub modified: Timestamp,
    pub sop_class: String,
    pub sop_instance: String,
    pub transfer_syntax: String,
    study: String,
    series: String,
}

impl<'a> Described<'a> {
    fn new(instance: &'a FileSetInstance) -> Result<Described<'a>, PackageError> {
        let invalid = |reason: String| PackageError::Metadata {
            path: instance.path.clone(),
            reason,
        };
        let meta = instance
            .metadata
            .as_object()
            .ok_or_else(|| invalid("metadata is not a DICOM JSON object".into()))?;
        let uid = |tag: u32, what: &str| {
            first_string(meta, tag)
                .ok_or_else(|| invalid(format!("{what} {} is missing", tag_key(tag))))
        };
        let transfer_syntax = instance
            .transfer_syntax
            .trim_end_matches(['\0', ' '])
            .to_string();
        if transfer_syntax.is_empty() {
            return Err(invalid("transfer syntax is missing".into()));
        }
        Ok(Described {
            path: &instance.path,
            meta,
            modified: instance.modified,
            sop_class: uid(0x0008_0016, "SOP Class UID")?,
            sop_instance: uid(0x0008_0018, "SOP Instance UID")?,
            transfer_syntax,
            study: uid(0x0020_000D, "Study Instance UID")?,
            series: uid(0x0020_000E, "Series Instance UID")?,
        })
    }

    /// Issuer and Patient ID, or without an ID, name and birth date (as
    /// the index keys patients).
    fn patient_key(&self) -> (String, String) {
        match first_string(self.meta, 0x0010_0020) {
            Some(id) => (first_string(self.meta, 0x0010_0021).unwrap_or_default(), id),
            None => (
                format!(
                    "~{}",
                    first_string(self.meta, 0x0010_0010).unwrap_or_default()
                ),
                first_string(self.meta, 0x0010_0030).unwrap_or_default(),
            ),
        }
    }

    fn number(&self, tag: u32) -> i64 {
        first_string(self.meta, tag)
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(i64::MAX, |n| n as i64)
    }

    fn text(&self, tag: u32) -> String {
        first_string(self.meta, tag).unwrap_or_default()
    }
}

/// The first value of an element as text (numbers formatted, names in
/// their alphabetic form), trimmed; None when absent or empty.
pub(super) fn first_string(meta: &Map<String, Value>, tag: u32) -> Option<String> {
    let value = meta.get(&tag_key(tag))?.get("Value")?.get(0)?;
    let text = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Object(_) => encode::person_name(value),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

struct PatientGroup {
    first: usize,
    sort: (String, String, String),
    studies: Vec<StudyGroup>,
}

struct StudyGroup {
    first: usize,
    sort: (String, String, String),
    series: Vec<SeriesGroup>,
}

struct SeriesGroup {
    first: usize,
    sort: (i64, String),
    instances: Vec<usize>,
}

/// Instances grouped patient → study → series, each level in a stable
/// order that does not depend on the order the instances came in.
struct Tree {
    patients: Vec<PatientGroup>,
}

impl Tree {
    fn build(described: &[Described<'_>]) -> Result<Tree, PackageError> {
        // The first instance of a series (by SOP Instance UID) decides its
        // study, the first of a study its patient: a UID is never listed
        // twice, as PS3.3 F.5 requires, even if the data disagree.
        let mut order: Vec<usize> = (0..described.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&described[a], &described[b]);
            (&a.sop_instance, a.path).cmp(&(&b.sop_instance, b.path))
        });
        let mut seen = HashSet::new();
        let mut patients: Vec<PatientGroup> = Vec::new();
        let mut patient_of: HashMap<(String, String), usize> = HashMap::new();
        let mut study_of: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut series_of: HashMap<&str, (usize, usize, usize)> = HashMap::new();
        for index in order {
            let d = &described[index];
            if !seen.insert(d.sop_instance.as_str()) {
                tracing::warn!(
                    path = %d.path.display(),
                    sop_instance = %d.sop_instance,
                    "SOP Instance UID occurs twice; the file-set keeps one"
                );
                continue;
            }
            let (p, s, r) = match series_of.get(d.series.as_str()) {
                Some(&place) => place,
                None => {
                    let (p, s) = match study_of.get(d.study.as_str()) {
                        Some(&place) => place,
                        None => {
                            let key = d.patient_key();
                            let p = *patient_of.entry(key).or_insert_with(|| {
                                patients.push(PatientGroup {
                                    first: index,
                                    sort: (
                                        d.text(0x0010_0010),
                                        d.text(0x0010_0020),
                                        d.text(0x0010_0021),
                                    ),
                                    studies: Vec::new(),
                                });
                                patients.len() - 1
                            });
                            patients[p].studies.push(StudyGroup {
                                first: index,
                                sort: (d.text(0x0008_0020), d.text(0x0008_0030), d.study.clone()),
                                series: Vec::new(),
                            });
                            let place = (p, patients[p].studies.len() - 1);
                            study_of.insert(d.study.as_str(), place);
                            place
                        }
                    };
                    let study = &mut patients[p].studies[s];
                    study.series.push(SeriesGroup {
                        first: index,
                        sort: (d.number(0x0020_0011), d.series.clone()),
                        instances: Vec::new(),
                    });
                    let place = (p, s, study.series.len() - 1);
                    series_of.insert(d.series.as_str(), place);
                    place
                }
            };
            patients[p].studies[s].series[r].instances.push(index);
        }
        // sort last: the places recorded above index the unsorted vectors
        patients.sort_by(|a, b| a.sort.cmp(&b.sort));
        if patients.len() > MAX_PER_LEVEL {
            return Err(too_many("patients"));
        }
        for patient in &mut patients {
            patient.studies.sort_by(|a, b| a.sort.cmp(&b.sort));
            if patient.studies.len() > MAX_PER_LEVEL {
                return Err(too_many("studies of a patient"));
            }
            for study in &mut patient.studies {
                study.series.sort_by(|a, b| a.sort.cmp(&b.sort));
                if study.series.len() > MAX_PER_LEVEL {
                    return Err(too_many("series in a study"));
                }
                for series in &mut study.series {
                    series.instances.sort_by_cached_key(|&i| {
                        let d = &described[i];
                        (d.number(0x0020_0013), d.sop_instance.clone())
                    });
                    if series.instances.len() > MAX_PER_LEVEL {
                        return Err(too_many("instances in a series"));
                    }
                }
            }
        }
        Ok(Tree { patients })
    }
}

fn too_many(what: &'static str) -> PackageError {
    PackageError::TooMany {
        what,
        max: MAX_PER_LEVEL,
    }
}

/// A directory record before its offsets are known.
struct Record {
    kind: &'static str,
    /// Everything after Directory Record Type, in tag order.
    elements: Vec<Element>,
    children: Vec<usize>,
}

impl Record {
    fn new(kind: &'static str, mut elements: Vec<Element>) -> Record {
        elements.sort_by_key(|e| e.tag);
        if elements.iter().any(Element::needs_utf8) {
            elements.insert(
                elements.partition_point(|e| e.tag < 0x0008_0005),
                Element::strings(0x0008_0005, *b"CS", &["ISO_IR 192"]),
            );
        }
        Record {
            kind,
            elements,
            children: Vec::new(),
        }
    }

    /// The four Directory Elements that start the record's item.
    fn header(&self, next: u32, lower: u32) -> [Element; 4] {
        [
            Element::ul(0x0004_1400, next),
            Element::us(0x0004_1410, 0xFFFF), // in use
            Element::ul(0x0004_1420, lower),
            Element::strings(0x0004_1430, *b"CS", &[self.kind]),
        ]
    }

    /// Length of the item with its tag and length (the offsets are UL:
    /// their values do not change it).
    fn encoded_len(&self) -> u64 {
        8 + encode::items_len(&self.header(0, 0)) + encode::items_len(&self.elements)
    }
}

/// Part 10 file: preamble, meta group, then the Basic Directory data set
/// with the offsets filled in.
fn encode_dicomdir(
    records: Vec<Record>,
    roots: &[usize],
    file_set_id: &str,
    files: &[(usize, String)],
    instances: &[FileSetInstance],
) -> Result<Vec<u8>, PackageError> {
    let mut out = Vec::new();
    crate::part10::write_part10_header(
        &mut out,
        MEDIA_STORAGE_DIRECTORY,
        &file_set_uid(file_set_id, files, instances),
        EXPLICIT_VR_LITTLE_ENDIAN,
        "",
    )?;

    // offsets: every record's item tag, from the first byte of the file
    let head = [
        Element::strings(0x0004_1130, *b"CS", &[file_set_id]),
        Element::ul(0x0004_1200, 0),
        Element::ul(0x0004_1202, 0),
        Element::us(0x0004_1212, 0),
    ];
    let sequence_start = out.len() as u64 + head.iter().map(Element::encoded_len).sum::<u64>() + 12;
    let mut offsets = Vec::with_capacity(records.len());
    let mut position = sequence_start;
    for record in &records {
        offsets.push(position);
        position += record.encoded_len();
    }
    let to_u32 = |offset: u64| {
        u32::try_from(offset).map_err(|_| PackageError::TooMany {
            what: "bytes of DICOMDIR",
            max: u32::MAX as usize,
        })
    };
    let offset_of = |i: Option<&usize>| i.map_or(Ok(0), |&i| to_u32(offsets[i]));

    // next: the following sibling in the same directory entity
    let mut next = vec![None; records.len()];
    for siblings in std::iter::once(roots).chain(records.iter().map(|r| r.children.as_slice())) {
        for pair in siblings.windows(2) {
            next[pair[0]] = Some(pair[1]);
        }
    }
    let mut items = Vec::with_capacity(records.len());
    for (i, record) in records.into_iter().enumerate() {
        let header = record.header(
            offset_of(next[i].as_ref())?,
            offset_of(record.children.first())?,
        );
        items.push(header.into_iter().chain(record.elements).collect());
    }
    let mut data = vec![
        Element::strings(0x0004_1130, *b"CS", &[file_set_id]),
        Element::ul(0x0004_1200, offset_of(roots.first())?),
        Element::ul(0x0004_1202, offset_of(roots.last())?),
        Element::us(0x0004_1212, 0),
        Element::sequence(0x0004_1220, items),
    ];
    data.sort_by_key(|e| e.tag);
    for element in &data {
        element.encode(&mut out)?;
    }
    debug_assert_eq!(
        out.len() as u64,
        position,
        "records were laid out with other lengths than encoded"
    );
    Ok(out)
}

/// Media Storage SOP Instance UID of the DICOMDIR: a 2.25 UID from a
/// UUID (version 8) hashed from what the file-set holds, so that the same
/// instances give the same DICOMDIR, byte for byte.
fn file_set_uid(
    file_set_id: &str,
    files: &[(usize, String)],
    instances: &[FileSetInstance],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(file_set_id.as_bytes());
    for (index, file_id) in files {
        let instance = &instances[*index];
        hasher.update([0]);
        hasher.update(file_id.as_bytes());
        hasher.update([0]);
        hasher.update(first_string_of(instance, 0x0008_0018).as_bytes());
        hasher.update(instance.size.to_le_bytes());
    }
    let digest = hasher.finalize();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&digest[..16]);
    uuid[6] = (uuid[6] & 0x0F) | 0x80;
    uuid[8] = (uuid[8] & 0x3F) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(uuid))
}

fn first_string_of(instance: &FileSetInstance, tag: u32) -> String {
    instance
        .metadata
        .as_object()
        .and_then(|m| first_string(m, tag))
        .unwrap_or_default()
}

/// `YYYYMMDD` and `HHMMSS` of a timestamp (UTC), for Type 1 dates and
/// times an instance does not have.
pub(super) fn date_time(t: Timestamp) -> (String, String) {
    let secs = t.0 / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    (
        format!("{y:04}{m:02}{d:02}"),
        format!("{:02}{:02}{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}
