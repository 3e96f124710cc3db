//! Identifiers: encoded in the transfer syntax of their presentation
//! context (Explicit or Implicit VR Little Endian: the only ones proposed
//! for query/retrieve), and decoded from the PACS only after their
//! structure has been checked.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_encoding::TransferSyntax;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::{
    EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
};

use crate::dimse::scu::{EXPLICIT_VR_LE, ScuError};

/// Largest identifier we take from a PACS.
pub(super) const MAX_IDENTIFIER: usize = 1 << 20;
/// Sequences nested deeper than this are refused: the object is built
/// (and dropped) recursively.
const MAX_DEPTH: usize = 16;
const UNDEFINED: u32 = u32::MAX;

fn syntax(ts: &str) -> TransferSyntax {
    if ts == EXPLICIT_VR_LE {
        EXPLICIT_VR_LITTLE_ENDIAN.erased()
    } else {
        IMPLICIT_VR_LITTLE_ENDIAN.erased()
    }
}

/// The levels of the Study Root information model.
const LEVELS: [&str; 3] = ["STUDY", "SERIES", "IMAGE"];

/// Checks that `identifier` says its Query/Retrieve Level (one of the
/// Study Root model) before anything is sent.
pub(super) fn check_level(identifier: &InMemDicomObject) -> Result<(), ScuError> {
    let level = identifier
        .get(tags::QUERY_RETRIEVE_LEVEL)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_string())
        .ok_or_else(|| ScuError::Identifier("no Query/Retrieve Level (0008,0052)".into()))?;
    if !LEVELS.contains(&level.as_str()) {
        return Err(ScuError::Identifier(format!(
            "Query/Retrieve Level {level:?} is not one of the Study Root model ({})",
            LEVELS.join(", ")
        )));
    }
    Ok(())
}

pub(super) fn encode(identifier: &InMemDicomObject, ts: &str) -> Result<Vec<u8>, ScuError> {
    let mut out = Vec::new();
    identifier
        .write_dataset_with_ts(&mut out, &syntax(ts))
        .map_err(|e| ScuError::Identifier(crate::base::error_chain(&e)))?;
    Ok(out)
}

/// Decodes an identifier from the PACS; the error says why it could not
/// be (for [`super::FindResult::malformed`]).
pub(super) fn decode(bytes: &[u8], ts: &str) -> Result<InMemDicomObject, String> {
    check_structure(bytes, ts == EXPLICIT_VR_LE)
        .map_err(|(offset, reason)| format!("identifier malformed at byte {offset}: {reason}"))?;
    InMemDicomObject::read_dataset_with_ts(bytes, &syntax(ts))
        .map_err(|e| format!("identifier undecodable: {}", crate::base::error_chain(&e)))
}

/// (0008,0058) Failed SOP Instance UID List of a retrieve's final
/// identifier.
pub(super) fn failed_sop_instances(identifier: &InMemDicomObject) -> Vec<String> {
    identifier
        .get(tags::FAILED_SOP_INSTANCE_UID_LIST)
        .and_then(|e| e.to_multi_str().ok())
        .map(|uids| {
            uids.iter()
                .map(|u| u.trim_matches(['\0', ' ']).to_string())
                .filter(|u| !u.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Frame {
    Sequence {
        end: Option<usize>,
    },
    Item {
        end: Option<usize>,
    },
    /// Encapsulated pixel data: its items are fragments, not data sets.
    Fragments,
}

impl Frame {
    fn end(self) -> Option<usize> {
        match self {
            Frame::Sequence { end } | Frame::Item { end } => end,
            Frame::Fragments => None,
        }
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// VRs with a 4-byte length in Explicit VR (PS3.5 §7.1.2).
fn long_form(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        OB | OD | OF | OL | OV | OW | SQ | SV | UC | UN | UR | UT | UV
    )
}

fn dictionary_is_sequence(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|e| e.vr().relaxed() == VR::SQ)
}

/// Walks every element and item header of an encoded data set and checks
/// that each declared length fits in the bytes there (and in its
/// container), that items and delimiters are where they belong and that
/// nesting stays within [`MAX_DEPTH`]. The decoder allocates a value's
/// declared length before reading it: without this, a 1 KiB identifier
/// could make it allocate 4 GiB. Err: (offset, reason).
fn check_structure(bytes: &[u8], explicit: bool) -> Result<(), (usize, String)> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0usize;
    loop {
        while let Some(end) = stack.last().and_then(|f| f.end()) {
            if pos < end {
                break;
            }
            if pos > end {
                return Err((pos, "a value runs past the end of its container".into()));
            }
            stack.pop();
        }
        if pos == bytes.len() {
            return match stack.is_empty() {
                true => Ok(()),
                false => Err((pos, "ends inside a sequence".into())),
            };
        }
        if stack.len() > 2 * MAX_DEPTH {
            return Err((pos, format!("sequences nested deeper than {MAX_DEPTH}")));
        }
        let limit = stack
            .iter()
            .rev()
            .find_map(|f| f.end())
            .unwrap_or(bytes.len());
        let fits = |start: usize, len: u32| {
            start
                .checked_add(len as usize)
                .filter(|end| *end <= limit)
                .ok_or_else(|| {
                    (
                        start,
                        format!("declares {len} bytes, {} remain", limit - start.min(limit)),
                    )
                })
        };
        let header = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| (pos, "ends inside an element header".to_string()))?;
        let tag = Tag(le16(&header[0..2]), le16(&header[2..4]));
        if tag.group() == 0xFFFE {
            let len = le32(&header[4..8]);
            pos += 8;
            match (tag.element(), stack.last().copied()) {
                (0xE000, Some(Frame::Fragments)) if len != UNDEFINED => pos = fits(pos, len)?,
                (0xE000, Some(Frame::Sequence { .. })) => stack.push(Frame::Item {
                    end: (len != UNDEFINED).then(|| fits(pos, len)).transpose()?,
                }),
                (0xE00D, Some(Frame::Item { end: None })) => {
                    stack.pop();
                }
                (0xE0DD, Some(Frame::Sequence { end: None } | Frame::Fragments)) => {
                    stack.pop();
                }
                _ => return Err((pos - 8, format!("item or delimiter {tag} out of place"))),
            }
            continue;
        }
        if matches!(
            stack.last(),
            Some(Frame::Sequence { .. } | Frame::Fragments)
        ) {
            return Err((pos, format!("element {tag} where an item belongs")));
        }
        let (vr, len, header_len) = if explicit {
            let vr = VR::from_binary([header[4], header[5]])
                .ok_or_else(|| (pos, format!("element {tag} has an unknown VR")))?;
            if long_form(vr) {
                let long = bytes
                    .get(pos + 8..pos + 12)
                    .ok_or_else(|| (pos, "ends inside an element header".to_string()))?;
                (Some(vr), le32(long), 12)
            } else {
                (Some(vr), u32::from(le16(&header[6..8])), 8)
            }
        } else {
            let vr = dictionary_is_sequence(tag).then_some(VR::SQ);
            (vr, le32(&header[4..8]), 8)
        };
        pos += header_len;
        let pixel_data = tag == tags::PIXEL_DATA;
        match (len, vr) {
            (UNDEFINED, _) if pixel_data => stack.push(Frame::Fragments),
            (UNDEFINED, Some(VR::SQ | VR::UN) | None) => stack.push(Frame::Sequence { end: None }),
            (UNDEFINED, Some(vr)) => {
                return Err((pos, format!("element {tag} ({vr:?}) of undefined length")));
            }
            (len, Some(VR::SQ)) => stack.push(Frame::Sequence {
                end: Some(fits(pos, len)?),
            }),
            (len, _) => pos = fits(pos, len)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimse::scu::IMPLICIT_VR_LE;
    use dicom_core::{DataElement, PrimitiveValue};
    use dicom_object::mem::InMemElement;

    fn sample() -> InMemDicomObject {
        let item = InMemDicomObject::from_element_iter([DataElement::new(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        )]);
        InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::QUERY_RETRIEVE_LEVEL,
                VR::CS,
                PrimitiveValue::from("STUDY"),
            ),
            DataElement::new(
                tags::PATIENT_NAME,
                VR::PN,
                PrimitiveValue::from("Jansen^Anna"),
            ),
            InMemElement::new(
                tags::REFERENCED_SERIES_SEQUENCE,
                VR::SQ,
                dicom_core::value::DataSetSequence::from(vec![item]),
            ),
        ])
    }

    #[test]
    fn our_encodings_pass_and_decode_back() {
        for ts in [EXPLICIT_VR_LE, IMPLICIT_VR_LE] {
            let bytes = encode(&sample(), ts).unwrap();
            let back = decode(&bytes, ts).unwrap();
            assert_eq!(
                back.get(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
                "Jansen^Anna"
            );
            let items = back
                .get(tags::REFERENCED_SERIES_SEQUENCE)
                .unwrap()
                .items()
                .unwrap();
            assert_eq!(items.len(), 1);
        }
    }

    #[test]
    fn lying_lengths_and_deep_nesting_are_refused() {
        let ts = EXPLICIT_VR_LE;
        let mut bytes = encode(&sample(), ts).unwrap();
        // PatientName (PN, short form) claims 0xFFF0 bytes
        let at = bytes
            .windows(4)
            .position(|w| w == [0x10, 0x00, 0x10, 0x00])
            .unwrap();
        bytes[at + 6..at + 8].copy_from_slice(&0xFFF0u16.to_le_bytes());
        let err = decode(&bytes, ts).unwrap_err();
        assert!(err.contains("declares 65520 bytes"), "{err}");
        // implicit: a 4 GiB length
        let mut bytes = encode(&sample(), IMPLICIT_VR_LE).unwrap();
        let at = bytes
            .windows(4)
            .position(|w| w == [0x10, 0x00, 0x10, 0x00])
            .unwrap();
        bytes[at + 4..at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        assert!(
            decode(&bytes, IMPLICIT_VR_LE)
                .unwrap_err()
                .contains("declares")
        );
        // 40 nested undefined-length sequences
        let mut deep = Vec::new();
        for _ in 0..40 {
            deep.extend_from_slice(&[0x08, 0x00, 0x15, 0x11, b'S', b'Q', 0, 0]);
            deep.extend_from_slice(&UNDEFINED.to_le_bytes());
            deep.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
            deep.extend_from_slice(&UNDEFINED.to_le_bytes());
        }
        let err = decode(&deep, ts).unwrap_err();
        assert!(err.contains("nested deeper"), "{err}");
        // truncated in the middle, and garbage
        let bytes = encode(&sample(), ts).unwrap();
        assert!(decode(&bytes[..bytes.len() - 3], ts).is_err());
        assert!(decode(b"\x01\x02\x03", ts).is_err());
    }

    #[test]
    fn level_is_required() {
        assert!(check_level(&sample()).is_ok());
        let mut no_level = sample();
        no_level.remove_element(tags::QUERY_RETRIEVE_LEVEL);
        assert!(check_level(&no_level).is_err());
        let mut patient = sample();
        patient.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from("PATIENT"),
        ));
        assert!(
            check_level(&patient)
                .unwrap_err()
                .to_string()
                .contains("PATIENT")
        );
    }
}
