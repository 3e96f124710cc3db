//! Values sent with VR UN whose tag the standard dictionary knows are read
//! by their dictionary VR (PS3.5 6.2.2). A sender, or a node on the way
//! that did not know the tag, may send any element as UN; the value is then
//! encoded as Implicit VR Little Endian would encode it. Without this, a
//! Study Instance UID sent as UN reads as a list of bytes and the instance
//! is refused. Only the in-memory description (index, `/metadata`, QIDO)
//! changes: the stored bytes stay as received.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::{DataElementHeader, Length};
use dicom_core::{PrimitiveValue, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::text::SpecificCharacterSet;
use dicom_parser::stateful::decode::{StatefulDecode, StatefulDecoder};
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

/// The VR the standard dictionary gives `tag`, where it names one a value
/// can be read as: not for private or unknown tags, not for pixel data
/// (located, never read), not sequences, not UN itself. A context-dependent VR takes the
/// reading Implicit VR Little Endian readers give it (US for US/SS, OB for
/// OB/OW, OW for LUT data).
pub fn dictionary_vr(tag: Tag) -> Option<VR> {
    if tag.group() % 2 == 1 {
        return None;
    }
    let vr = match StandardDataDictionary.by_tag(tag)?.vr() {
        VirtualVr::Exact(vr) => vr,
        VirtualVr::Xs => VR::US,
        VirtualVr::Ox => VR::OB,
        VirtualVr::Lt => VR::OW,
        _ => return None,
    };
    // a sequence in UN would be items to parse as Implicit VR Little
    // Endian; it stays UN (no index key lives in one)
    (!matches!(vr, VR::UN | VR::SQ)).then_some(vr)
}

/// `bytes` (a UN value) read as `vr`, as Implicit VR Little Endian encodes
/// it, text in `charset`. `None` when they do not form a value of that VR
/// (a length that is no multiple of the value size, text that does not
/// decode): the element then stays UN, as received.
pub fn reinterpret(
    tag: Tag,
    vr: VR,
    bytes: &[u8],
    charset: &SpecificCharacterSet,
) -> Option<PrimitiveValue> {
    if vr == VR::SQ {
        return None;
    }
    let size = match vr {
        VR::US | VR::SS | VR::OW => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL | VR::AT => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    };
    let len = u32::try_from(bytes.len()).ok()?;
    if !bytes.len().is_multiple_of(size) {
        return None;
    }
    let mut decoder = StatefulDecoder::new_with(
        bytes,
        &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        charset.clone(),
        0,
    )
    .ok()?;
    let value = decoder
        .read_value_preserved(&DataElementHeader::new(tag, vr, Length(len)))
        .ok()?;
    (decoder.position() == u64::from(len)).then_some(value)
}

/// The character set a Specific Character Set value names (its first
/// value, as the decoder takes it); the default repertoire otherwise.
pub fn charset_of(value: &str) -> SpecificCharacterSet {
    value
        .split('\\')
        .next()
        .map(|code| code.trim_matches([' ', '\0']))
        .and_then(SpecificCharacterSet::from_code)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    fn read(tag: Tag, bytes: &[u8]) -> Option<(VR, PrimitiveValue)> {
        let vr = dictionary_vr(tag)?;
        Some((
            vr,
            reinterpret(tag, vr, bytes, &SpecificCharacterSet::default())?,
        ))
    }

    #[test]
    fn known_tags_take_their_dictionary_vr() {
        let (vr, value) = read(tags::STUDY_INSTANCE_UID, b"1.2.999.999.99.9.9999.8888").unwrap();
        assert_eq!(vr, VR::UI);
        assert_eq!(value.to_str(), "1.2.999.999.99.9.9999.8888");
        let (vr, value) = read(tags::SOP_CLASS_UID, b"1.2.840.10008.5.1.4.1.1.481.2\0").unwrap();
        assert_eq!(vr, VR::UI);
        assert_eq!(
            value.to_str().trim_end_matches('\0'),
            "1.2.840.10008.5.1.4.1.1.481.2"
        );
        let (vr, value) = read(tags::PIXEL_SPACING, b"10.0\\10.0 ").unwrap();
        assert_eq!(vr, VR::DS);
        assert_eq!(value.multiplicity(), 2);
        let (vr, value) = read(tags::ROWS, &[0x00, 0x02]).unwrap();
        assert_eq!(vr, VR::US);
        assert_eq!(value.to_int::<u16>().unwrap(), 512);
        let (vr, value) = read(tags::FRAME_INCREMENT_POINTER, &[0x04, 0x30, 0x0C, 0x00]).unwrap();
        assert_eq!(vr, VR::AT);
        assert_eq!(value.tag().unwrap(), Tag(0x3004, 0x000C));
    }

    #[test]
    fn private_unknown_and_malformed_values_stay_un() {
        assert_eq!(dictionary_vr(Tag(0x0009, 0x1010)), None);
        assert_eq!(dictionary_vr(tags::PIXEL_DATA), None);
        assert_eq!(dictionary_vr(tags::REFERENCED_RT_PLAN_SEQUENCE), None);
        // three bytes cannot be US values
        assert!(read(tags::ROWS, &[1, 2, 3]).is_none());
        assert!(
            reinterpret(
                tags::REFERENCED_RT_PLAN_SEQUENCE,
                VR::SQ,
                b"",
                &Default::default()
            )
            .is_none()
        );
    }

    #[test]
    fn text_follows_the_specific_character_set() {
        let latin1 = charset_of("ISO_IR 100");
        let value = reinterpret(tags::PATIENT_NAME, VR::PN, b"M\xfcller^J\xf6rg", &latin1).unwrap();
        assert_eq!(value.to_str(), "Müller^Jörg");
        assert_eq!(charset_of(""), SpecificCharacterSet::default());
        assert_eq!(charset_of("ISO_IR 192"), SpecificCharacterSet::ISO_IR_192);
    }
}
