//! One pass over a received data set: checks that it parses to its very last
//! byte, keeps the small values in memory (for the index and `/metadata`)
//! and records where the large ones lie in the file instead of reading them.
//! Memory is bounded independent of the data set's size.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::rc::Rc;

use dicom_core::header::{DataElementHeader, HasLength, Header, Length};
use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::SpecificCharacterSet;
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_object::InMemDicomObject;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::{StatefulDecode, StatefulDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

use super::layout::{BulkLayout, BulkValue, PixelLayout};
use super::unknown_vr;

/// Binary values longer than this are bulk data: not kept in memory, served
/// by `BulkDataURI`.
const BULK_BINARY_THRESHOLD: u32 = 1024;
/// Any value longer than this is bulk data.
const BULK_ANY_THRESHOLD: u32 = 64 * 1024;
/// Once this many value bytes are held, further values are treated as bulk.
const MAX_KEPT_BYTES: u64 = 16 * 1024 * 1024;
/// What the in-memory description of one data set may cost, counting each
/// element, item and fragment at a fixed price besides kept values: a data
/// set of a million empty items must not cost gigabytes.
const MEMORY_BUDGET: u64 = 48 * 1024 * 1024;
const ELEMENT_COST: u64 = 64;
const ITEM_COST: u64 = 128;
const FRAGMENT_COST: u64 = 16;
/// A deflated data set may inflate to at most this multiple of its size.
const MAX_INFLATION: u64 = 200;
/// A basic offset table longer than this is not read (it is not needed).
const MAX_OFFSET_TABLE: u32 = 4 * 1024 * 1024;
const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("transfer syntax {0} is unknown")]
    UnknownTransferSyntax(String),
    #[error("malformed data set near byte {offset}: {reason}")]
    Malformed { offset: u64, reason: String },
    #[error("data set truncated: {present} of {declared} bytes present")]
    Truncated { declared: u64, present: u64 },
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ParseError {
    /// The data ends early: what a copy still in progress looks like.
    pub fn is_truncation(&self) -> bool {
        matches!(self, ParseError::Truncated { .. })
    }
}

/// The small values of a data set and where its large values are.
#[derive(Debug)]
pub struct Parsed {
    pub object: InMemDicomObject,
    pub layout: BulkLayout,
}

/// Counts the bytes the decoder actually consumed, to tell a complete data
/// set from one that ends inside a value (skipping does not report EOF),
/// and stops a deflated data set from inflating without bound.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        if self.count.get() > self.limit {
            return Err(io::Error::other(format!(
                "data set inflates to more than {} bytes",
                self.limit
            )));
        }
        Ok(n)
    }
}

/// Parses the data set that starts at `dataset_offset` in `file`.
pub fn parse_dataset(file: &File, dataset_offset: u64, ts_uid: &str) -> Result<Parsed, ParseError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .filter(|ts| !ts.is_unsupported())
        .ok_or_else(|| ParseError::UnknownTransferSyntax(ts_uid.to_string()))?;
    let stored = file.metadata()?.len().saturating_sub(dataset_offset);
    let mut source = BufReader::with_capacity(64 * 1024, file);
    source.seek(SeekFrom::Start(dataset_offset))?;
    let count = Rc::new(Cell::new(0));
    let mut layout = BulkLayout::default();
    let explicit_le = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    // A deflated data set is walked inflated, as Explicit VR Little Endian;
    // its offsets are then not file offsets.
    let (reader, decoded_as, base, limit): (Box<dyn Read + '_>, _, _, _) = match ts.codec() {
        Codec::Dataset(Some(adapter)) => {
            layout.deflated = true;
            let limit = stored.saturating_mul(MAX_INFLATION).max(1 << 20);
            (
                adapter.adapt_reader(Box::new(source)),
                &explicit_le,
                0,
                limit,
            )
        }
        _ => (Box::new(source), ts, dataset_offset, u64::MAX),
    };
    let counted = Counting {
        inner: reader,
        count: count.clone(),
        limit,
    };
    let decoder =
        StatefulDecoder::new_with_ts(counted, decoded_as, base).map_err(|e| broken(base, e))?;
    let mut reader = LazyDataSetReader::new(decoder);
    let object = Walk::new(&mut layout).dataset(&mut reader, "", 0)?;
    let consumed = reader.into_decoder().position() - base;
    let present = count.get();
    if consumed > present {
        return Err(ParseError::Truncated {
            declared: consumed,
            present,
        });
    }
    if consumed < present {
        return Err(ParseError::Malformed {
            offset: base + consumed,
            reason: format!("{} stray bytes after the last element", present - consumed),
        });
    }
    Ok(Parsed { object, layout })
}

fn malformed(offset: u64, reason: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed {
        offset,
        reason: reason.to_string(),
    }
}

/// A decoder's error with its causes (the outer message alone rarely says
/// what went wrong).
fn broken(offset: u64, e: impl std::error::Error) -> ParseError {
    malformed(offset, crate::base::error_chain(&e))
}

fn is_pixel_data(tag: Tag) -> bool {
    matches!(
        tag,
        tags::PIXEL_DATA | tags::FLOAT_PIXEL_DATA | tags::DOUBLE_FLOAT_PIXEL_DATA
    )
}

fn is_binary(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN
    )
}

fn tag_path(prefix: &str, tag: Tag) -> String {
    format!("{prefix}{:04X}{:04X}", tag.group(), tag.element())
}

struct Walk<'a> {
    layout: &'a mut BulkLayout,
    /// Value bytes held in memory.
    kept: u64,
    /// Everything charged against `MEMORY_BUDGET`.
    spent: u64,
    /// The Specific Character Set seen last, for text values sent as UN
    /// (the decoder only follows one it reads as CS).
    charset: SpecificCharacterSet,
}

impl<'a> Walk<'a> {
    fn new(layout: &'a mut BulkLayout) -> Self {
        Walk {
            layout,
            kept: 0,
            spent: 0,
            charset: SpecificCharacterSet::default(),
        }
    }

    fn charge(&mut self, cost: u64) -> Result<(), ParseError> {
        self.spent += cost;
        if self.spent > MEMORY_BUDGET {
            return Err(malformed(
                0,
                "data set too complex to describe (too many elements, items or fragments)",
            ));
        }
        Ok(())
    }

    /// Reads elements until the end of the data set (top level) or the end
    /// of the current item (nested).
    fn dataset<S: StatefulDecode>(
        &mut self,
        r: &mut LazyDataSetReader<S>,
        prefix: &str,
        depth: usize,
    ) -> Result<InMemDicomObject, ParseError> {
        if depth > MAX_DEPTH {
            return Err(malformed(
                0,
                format!("sequences nested deeper than {MAX_DEPTH}"),
            ));
        }
        let mut object = InMemDicomObject::new_empty();
        loop {
            let Some(token) = r.advance() else {
                return if depth == 0 {
                    Ok(object)
                } else {
                    Err(malformed(0, "data set ends inside a sequence item"))
                };
            };
            self.charge(ELEMENT_COST)?;
            match token.map_err(|e| broken(0, e))? {
                LazyDataToken::ElementHeader(header) => {
                    let element = self.element(r, header, prefix, depth)?;
                    object.put(element);
                }
                LazyDataToken::SequenceStart { tag, .. } => {
                    let path = format!("{}.", tag_path(prefix, tag));
                    let items = self.items(r, &path, depth)?;
                    object.put(DataElement::new(
                        tag,
                        VR::SQ,
                        DataSetSequence::new(items, Length::UNDEFINED),
                    ));
                }
                LazyDataToken::PixelSequenceStart => {
                    let (offset_table, fragments) = self.pixel_sequence(r)?;
                    if depth == 0 {
                        self.layout.pixel = Some(PixelLayout::Encapsulated {
                            offset_table,
                            fragments,
                        });
                    }
                    object.put(DataElement::new(
                        tags::PIXEL_DATA,
                        VR::OB,
                        PrimitiveValue::Empty,
                    ));
                }
                LazyDataToken::ItemEnd if depth > 0 => return Ok(object),
                other => {
                    return Err(malformed(0, format!("unexpected {:?}", other.into_repr())));
                }
            }
        }
    }

    fn element<S: StatefulDecode>(
        &mut self,
        r: &mut LazyDataSetReader<S>,
        header: DataElementHeader,
        prefix: &str,
        depth: usize,
    ) -> Result<DataElement<InMemDicomObject>, ParseError> {
        let tag = header.tag();
        let len = header.length().get().unwrap_or(0);
        // A UN value of a known tag is described by its dictionary VR
        // (PS3.5 6.2.2); the bytes stay as received.
        let known = (header.vr() == VR::UN)
            .then(|| unknown_vr::dictionary_vr(tag))
            .flatten();
        let vr = known.unwrap_or(header.vr());
        let decoder = match r.advance() {
            Some(Ok(LazyDataToken::LazyValue { decoder, .. })) => decoder,
            Some(Err(e)) => return Err(broken(0, e)),
            _ => return Err(malformed(0, format!("no value for {tag}"))),
        };
        let pixel = depth == 0 && is_pixel_data(tag);
        let bulk = pixel
            || (is_binary(vr) && len > BULK_BINARY_THRESHOLD)
            || len > BULK_ANY_THRESHOLD
            || self.kept + u64::from(len) > MAX_KEPT_BYTES;
        if !bulk {
            self.kept += u64::from(len);
            self.charge(u64::from(len))?;
            let element = match known {
                Some(known) => {
                    let mut bytes = Vec::with_capacity(len as usize);
                    decoder
                        .read_to_vec(len, &mut bytes)
                        .map_err(|e| broken(decoder.position(), e))?;
                    match unknown_vr::reinterpret(tag, known, &bytes, &self.charset) {
                        Some(value) => DataElement::new(tag, known, value),
                        None => DataElement::new(tag, VR::UN, PrimitiveValue::from(bytes)),
                    }
                }
                None => {
                    let value = decoder
                        .read_value_preserved(&header)
                        .map_err(|e| broken(decoder.position(), e))?;
                    DataElement::new(tag, vr, value)
                }
            };
            if tag == tags::SPECIFIC_CHARACTER_SET {
                self.charset = unknown_vr::charset_of(&element.to_str().unwrap_or_default());
            }
            return Ok(element);
        }
        let offset = decoder.position();
        decoder.skip_bytes(len).map_err(|e| broken(offset, e))?;
        if pixel {
            self.layout.pixel = Some(PixelLayout::Native {
                offset,
                length: u64::from(len),
            });
        } else {
            self.layout.values.push(BulkValue {
                path: tag_path(prefix, tag),
                vr: vr.to_string().to_string(),
                offset,
                length: u64::from(len),
            });
        }
        Ok(DataElement::new(tag, vr, PrimitiveValue::Empty))
    }

    fn items<S: StatefulDecode>(
        &mut self,
        r: &mut LazyDataSetReader<S>,
        path: &str,
        depth: usize,
    ) -> Result<Vec<InMemDicomObject>, ParseError> {
        let mut items = Vec::new();
        loop {
            match r.advance() {
                Some(Ok(LazyDataToken::ItemStart { .. })) => {
                    self.charge(ITEM_COST)?;
                    let prefix = format!("{path}{}.", items.len());
                    items.push(self.dataset(r, &prefix, depth + 1)?);
                }
                Some(Ok(LazyDataToken::SequenceEnd)) => return Ok(items),
                Some(Ok(other)) => {
                    return Err(malformed(
                        0,
                        format!("unexpected {:?} in a sequence", other.into_repr()),
                    ));
                }
                Some(Err(e)) => return Err(broken(0, e)),
                None => return Err(malformed(0, "data set ends inside a sequence")),
            }
        }
    }

    /// Reads the basic offset table and records each fragment's position.
    #[allow(clippy::type_complexity)]
    fn pixel_sequence<S: StatefulDecode>(
        &mut self,
        r: &mut LazyDataSetReader<S>,
    ) -> Result<(Vec<u32>, Vec<(u64, u32)>), ParseError> {
        let mut offset_table = Vec::new();
        let mut fragments = Vec::new();
        // Item 1 is the basic offset table (possibly empty: then no value
        // token follows its start); the others are fragments.
        let mut items = 0usize;
        loop {
            match r.advance() {
                Some(Ok(LazyDataToken::ItemStart { .. })) => items += 1,
                Some(Ok(LazyDataToken::ItemEnd)) => {}
                Some(Ok(LazyDataToken::LazyItemValue { len, decoder })) => {
                    let offset = decoder.position();
                    if items == 1 && len <= MAX_OFFSET_TABLE {
                        let mut bytes = Vec::with_capacity(len as usize);
                        decoder
                            .read_to_vec(len, &mut bytes)
                            .map_err(|e| broken(offset, e))?;
                        offset_table = bytes
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                    } else {
                        decoder.skip_bytes(len).map_err(|e| broken(offset, e))?;
                        if items > 1 {
                            self.charge(FRAGMENT_COST)?;
                            fragments.push((offset, len));
                        }
                    }
                }
                Some(Ok(LazyDataToken::SequenceEnd)) => return Ok((offset_table, fragments)),
                Some(Ok(other)) => {
                    return Err(malformed(
                        0,
                        format!(
                            "unexpected {:?} in encapsulated pixel data",
                            other.into_repr()
                        ),
                    ));
                }
                Some(Err(e)) => return Err(broken(0, e)),
                None => return Err(malformed(0, "data set ends inside encapsulated pixel data")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::part10::read_part10_header;

    /// A text value as the index keeps it (ingest's attrs::text, which this
    /// layer may not import).
    fn text(obj: &InMemDicomObject, tag: Tag) -> String {
        obj.get(tag)
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_matches([' ', '\0']).to_string())
            .unwrap_or_default()
    }

    fn sample(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sample-dicom")
            .join(rel)
    }

    fn parse(path: &Path) -> Result<Parsed, ParseError> {
        let file = File::open(path).unwrap();
        let header = read_part10_header(&file).unwrap();
        parse_dataset(&file, header.dataset_offset, &header.transfer_syntax)
    }

    #[test]
    fn native_pixel_data_is_located_not_read() {
        let path = sample("ct-phantom/CT000001.dcm");
        let parsed = parse(&path).unwrap();
        let Some(PixelLayout::Native { offset, length }) = parsed.layout.pixel else {
            panic!("{:?}", parsed.layout)
        };
        let bytes = std::fs::read(&path).unwrap();
        let reference = dicom_object::open_file(&path).unwrap();
        let pixels = reference
            .element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(
            &bytes[offset as usize..(offset + length) as usize],
            &pixels[..]
        );
        assert!(parsed.object.get(tags::PIXEL_DATA).unwrap().is_empty());
        assert_eq!(text(&parsed.object, tags::MODALITY), "CT");
    }

    #[test]
    fn encapsulated_fragments_are_located() {
        let path = sample("rle/CT000001.dcm");
        let parsed = parse(&path).unwrap();
        let Some(PixelLayout::Encapsulated { fragments, .. }) = &parsed.layout.pixel else {
            panic!("{:?}", parsed.layout)
        };
        let bytes = std::fs::read(&path).unwrap();
        let reference = dicom_object::open_file(&path).unwrap();
        let element = reference.element(tags::PIXEL_DATA).unwrap();
        let expected = element.fragments().unwrap();
        assert_eq!(fragments.len(), expected.len());
        for ((offset, len), frag) in fragments.iter().zip(expected) {
            assert_eq!(
                &bytes[*offset as usize..*offset as usize + *len as usize],
                &frag[..]
            );
        }
    }

    #[test]
    fn implicit_vr_and_latin1_names_decode() {
        let parsed = parse(&sample("mr-brain/MR000001.dcm")).unwrap();
        assert_eq!(text(&parsed.object, tags::PATIENT_NAME), "Müller^Jörg");
    }

    /// Cut inside a value, inside an element header, or inside a sequence
    /// item: each must fail. (A cut exactly between two top-level elements
    /// leaves a shorter valid data set; the IOD checks catch what that
    /// drops.)
    #[test]
    fn truncation_inside_values_headers_and_items_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("cut.dcm");
        let check = |rel: &str, cuts: &dyn Fn(&[u8], usize) -> Vec<usize>| {
            let path = sample(rel);
            let bytes = std::fs::read(&path).unwrap();
            let header = read_part10_header(&File::open(&path).unwrap()).unwrap();
            for end in cuts(&bytes, header.dataset_offset as usize) {
                std::fs::File::create(&cut)
                    .unwrap()
                    .write_all(&bytes[..end])
                    .unwrap();
                let result = parse_dataset(
                    &File::open(&cut).unwrap(),
                    header.dataset_offset,
                    &header.transfer_syntax,
                );
                assert!(
                    result.is_err(),
                    "{rel} cut at {end} of {} parsed",
                    bytes.len()
                );
            }
        };
        // inside the pixel data value, and inside its element header
        check("ct-phantom/CT000001.dcm", &|b, _| {
            vec![
                b.len() - 1,
                b.len() - 5000,
                b.len() - 131072 + 3,
                b.len() - 131072 - 5,
            ]
        });
        // every byte inside the SR's Content Sequence (nested, defined and
        // undefined lengths)
        check("ct-phantom/SR000001.dcm", &|b, start| {
            let tag = [0x40, 0x00, 0x30, 0xA7];
            let at = start
                + b[start..]
                    .windows(4)
                    .position(|w| w == tag)
                    .expect("content sequence");
            (at + 1..b.len() - 16).collect()
        });
        // inside the RLE fragment
        check("rle/CT000001.dcm", &|b, _| {
            vec![b.len() - 10, b.len() - 100]
        });
    }

    fn write_dataset(dir: &Path, ts: &str, dataset: &[u8]) -> PathBuf {
        let path = dir.join("x.dcm");
        let mut file = File::create(&path).unwrap();
        crate::part10::write_part10_header(
            &mut file,
            "1.2.840.10008.5.1.4.1.1.88.11",
            "1.2.3",
            ts,
            "T",
        )
        .unwrap();
        file.write_all(dataset).unwrap();
        path
    }

    #[test]
    fn a_million_empty_items_are_refused_not_held() {
        let dir = tempfile::tempdir().unwrap();
        // (0008,1115) SQ undefined length, 500 000 empty items, delimiter
        let mut bytes = vec![
            0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        for _ in 0..500_000 {
            bytes.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]);
        }
        bytes.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        let path = write_dataset(dir.path(), "1.2.840.10008.1.2.1", &bytes);
        let err = parse(&path).unwrap_err().to_string();
        assert!(err.contains("too complex"), "{err}");
    }

    #[test]
    fn a_deflate_bomb_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        // (0009,0010) UN of 64 MiB zeros, deflated to a few kilobytes
        let mut plain = vec![0x09, 0x00, 0x10, 0x00, b'U', b'N', 0, 0];
        plain.extend_from_slice(&(64u32 << 20).to_le_bytes());
        plain.resize(plain.len() + (64 << 20), 0);
        let mut deflated = Vec::new();
        let mut encoder =
            flate2::write::DeflateEncoder::new(&mut deflated, flate2::Compression::best());
        encoder.write_all(&plain).unwrap();
        encoder.finish().unwrap();
        assert!(deflated.len() < 200_000);
        let path = write_dataset(dir.path(), "1.2.840.10008.1.2.1.99", &deflated);
        let err = parse(&path).unwrap_err().to_string();
        assert!(err.contains("inflates to more than"), "{err}");
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let path = sample("ct-phantom/PR000001.dcm");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0x08, 0x00]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.dcm");
        std::fs::write(&file, &bytes).unwrap();
        assert!(matches!(parse(&file), Err(ParseError::Malformed { .. })));
    }
}
