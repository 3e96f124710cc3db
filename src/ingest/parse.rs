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
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_object::InMemDicomObject;
use dicom_parser::dataset::LazyDataToken;
use dicom_parser::dataset::lazy_read::LazyDataSetReader;
use dicom_parser::stateful::decode::{StatefulDecode, StatefulDecoder};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

use crate::store::{BulkLayout, BulkValue, PixelLayout};

/// Binary values longer than this are bulk data: not kept in memory, served
/// by `BulkDataURI`.
const BULK_BINARY_THRESHOLD: u32 = 1024;
/// Any value longer than this is bulk data.
const BULK_ANY_THRESHOLD: u32 = 64 * 1024;
/// Once this many value bytes are held, further values are treated as bulk.
const MAX_KEPT_BYTES: u64 = 16 * 1024 * 1024;
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
/// set from one that ends inside a value (skipping does not report EOF).
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Parses the data set that starts at `dataset_offset` in `file`.
pub fn parse_dataset(file: &File, dataset_offset: u64, ts_uid: &str) -> Result<Parsed, ParseError> {
    let ts = TransferSyntaxRegistry
        .get(ts_uid)
        .filter(|ts| !ts.is_unsupported())
        .ok_or_else(|| ParseError::UnknownTransferSyntax(ts_uid.to_string()))?;
    let mut source = BufReader::with_capacity(64 * 1024, file);
    source.seek(SeekFrom::Start(dataset_offset))?;
    let count = Rc::new(Cell::new(0));
    let mut layout = BulkLayout::default();

    let (object, consumed) = if let Codec::Dataset(Some(adapter)) = ts.codec() {
        // Deflated: walk the inflated stream; its offsets are not file offsets.
        layout.deflated = true;
        let inflated = Counting {
            inner: adapter.adapt_reader(Box::new(source)),
            count: count.clone(),
        };
        let decoder =
            StatefulDecoder::new_with_ts(inflated, &EXPLICIT_VR_LITTLE_ENDIAN.erased(), 0)
                .map_err(|e| malformed(0, e))?;
        let mut reader = LazyDataSetReader::new(decoder);
        let object = Walk::new(&mut layout).dataset(&mut reader, "", 0)?;
        (object, reader.into_decoder().position())
    } else {
        let counted = Counting {
            inner: source,
            count: count.clone(),
        };
        let decoder = StatefulDecoder::new_with_ts(counted, ts, dataset_offset)
            .map_err(|e| malformed(dataset_offset, e))?;
        let mut reader = LazyDataSetReader::new(decoder);
        let object = Walk::new(&mut layout).dataset(&mut reader, "", 0)?;
        (object, reader.into_decoder().position() - dataset_offset)
    };
    if consumed != count.get() {
        return Err(if consumed > count.get() {
            ParseError::Truncated {
                declared: consumed,
                present: count.get(),
            }
        } else {
            ParseError::Malformed {
                offset: dataset_offset + consumed,
                reason: format!(
                    "{} stray bytes after the last element",
                    count.get() - consumed
                ),
            }
        });
    }
    Ok(Parsed { object, layout })
}

fn malformed(offset: u64, e: impl std::fmt::Display) -> ParseError {
    ParseError::Malformed {
        offset,
        reason: e.to_string(),
    }
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
    kept: u64,
}

impl<'a> Walk<'a> {
    fn new(layout: &'a mut BulkLayout) -> Self {
        Walk { layout, kept: 0 }
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
            match token.map_err(|e| malformed(0, e))? {
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
        let vr = header.vr();
        let len = header.length().get().unwrap_or(0);
        let token = match r.advance() {
            Some(Ok(token @ LazyDataToken::LazyValue { .. })) => token,
            Some(Err(e)) => return Err(malformed(0, e)),
            _ => return Err(malformed(0, format!("no value for {tag}"))),
        };
        let pixel = depth == 0 && is_pixel_data(tag);
        let bulk = pixel
            || (is_binary(vr) && len > BULK_BINARY_THRESHOLD)
            || len > BULK_ANY_THRESHOLD
            || self.kept + u64::from(len) > MAX_KEPT_BYTES;
        if !bulk {
            self.kept += u64::from(len);
            let value = token.into_value().map_err(|e| malformed(0, e))?;
            return Ok(DataElement::new(tag, vr, value));
        }
        let LazyDataToken::LazyValue { decoder, .. } = token else {
            unreachable!("matched above")
        };
        let offset = decoder.position();
        decoder.skip_bytes(len).map_err(|e| malformed(offset, e))?;
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
                Some(Err(e)) => return Err(malformed(0, e)),
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
        let mut first = true;
        loop {
            match r.advance() {
                Some(Ok(LazyDataToken::ItemStart { .. } | LazyDataToken::ItemEnd)) => {}
                Some(Ok(LazyDataToken::LazyItemValue { len, decoder })) => {
                    let offset = decoder.position();
                    if first && len <= MAX_OFFSET_TABLE {
                        let mut bytes = Vec::with_capacity(len as usize);
                        decoder
                            .read_to_vec(len, &mut bytes)
                            .map_err(|e| malformed(offset, e))?;
                        offset_table = bytes
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                    } else {
                        decoder.skip_bytes(len).map_err(|e| malformed(offset, e))?;
                        if !first {
                            fragments.push((offset, len));
                        }
                    }
                    first = false;
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
                Some(Err(e)) => return Err(malformed(0, e)),
                None => return Err(malformed(0, "data set ends inside encapsulated pixel data")),
            }
        }
    }
}
