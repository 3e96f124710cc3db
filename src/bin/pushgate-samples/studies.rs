//! `studies DIR --count N`: N small studies of one instance each, of many
//! patients, dates and modalities, for the console's study-list benchmark
//! (what matters there is how many studies there are, not their pixels).
//! Deterministic: the same N gives the same files.

use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};

use crate::bsn::{BSN_ISSUER, BSN_OID, is_valid_bsn};
use crate::ds::{Ds, into_file_object, write_file};
use crate::modules::{self, Mono};
use crate::uid::from_name;

const FAMILY: [&str; 40] = [
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van den Heuvel",
    "van der Veen",
    "van den Broek",
    "de Bruijn",
    "de Jong",
    "van Wijk",
    "Schouten",
    "Willems",
    "van Vliet",
    "Hoekstra",
    "Maas",
];
const GIVEN: [&str; 32] = [
    "Anna", "Emma", "Sophie", "Julia", "Lotte", "Sanne", "Eva", "Fleur", "Noa", "Tess", "Lieke",
    "Iris", "Femke", "Sara", "Mila", "Zoë", "Daan", "Sem", "Lucas", "Levi", "Finn", "Milan",
    "Jesse", "Thijs", "Bram", "Ruben", "Lars", "Jan", "Pieter", "Hendrik", "Kees", "Willem",
];
/// (Modality, its description)
const MODALITIES: [(&str, &str); 8] = [
    ("CT", "CT thorax"),
    ("MR", "MRI knie"),
    ("CR", "X-thorax"),
    ("US", "Echo abdomen"),
    ("DX", "X-hand"),
    ("MG", "Mammografie"),
    ("PT", "PET-CT"),
    ("NM", "Skeletscintigrafie"),
];

/// The `n`-th test BSN: 9999 and five digits, the last fixed by the
/// 11-proof (numbers whose check digit would be 10 are skipped).
fn bsn(n: u32) -> String {
    let mut k = n;
    loop {
        let stem = format!("9999{:04}", k % 10_000);
        let weighted: u32 = stem
            .bytes()
            .zip((2..=9).rev())
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let check = weighted % 11;
        if check < 10 {
            let bsn = format!("{stem}{check}");
            if is_valid_bsn(&bsn) {
                return bsn;
            }
        }
        k += 10_000;
    }
}

/// The date `days` after 2020-01-01 as YYYYMMDD (proleptic Gregorian).
fn date_after(days: u32) -> String {
    let (mut y, mut d) = (2020u32, days);
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
            366
        } else {
            365
        };
        if d < len {
            break;
        }
        d -= len;
        y += 1;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let months = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let mut m = 0;
    while d >= months[m] {
        d -= months[m];
        m += 1;
    }
    format!("{y}{:02}{:02}", m + 1, d + 1)
}

pub fn studies(dir: &Path, count: u32) -> Result<()> {
    ensure!(count > 0 && count <= 999_999, "count from 1 to 999999");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = Instant::now();
    let (rows, cols) = (16u16, 16u16);
    let pixels: Vec<u8> = (0..u32::from(rows) * u32::from(cols))
        .flat_map(|i| ((i * 13) as u16 & 0x0FFF).to_le_bytes())
        .collect();
    for i in 0..count {
        let patient = i / 2;
        let name = format!(
            "{}^{}",
            FAMILY[(patient % 40) as usize],
            GIVEN[((patient / 40) % 32) as usize]
        );
        let (modality, description) = MODALITIES[(i % 8) as usize];
        let date = date_after((i * 7919) % 2192);
        let key = format!("studies/{i}");
        let study_uid = from_name(&format!("{key}/study"));
        let series_uid = from_name(&format!("{key}/series"));
        let sop_uid = from_name(&format!("{key}/instance"));
        let mut q = Ds::new();
        q.s(tags::UNIVERSAL_ENTITY_ID, VR::UT, BSN_OID).s(
            tags::UNIVERSAL_ENTITY_ID_TYPE,
            VR::CS,
            "ISO",
        );
        let mut other = Ds::new();
        other
            .s(tags::PATIENT_ID, VR::LO, &bsn(patient))
            .s(tags::ISSUER_OF_PATIENT_ID, VR::LO, BSN_ISSUER)
            .s(tags::TYPE_OF_PATIENT_ID, VR::CS, "TEXT")
            .seq(tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE, vec![q]);
        let mut ds = Ds::new();
        ds.s(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192")
            .s(tags::PATIENT_NAME, VR::PN, &name)
            .s(tags::PATIENT_ID, VR::LO, &format!("ZKH{patient:07}"))
            .s(tags::ISSUER_OF_PATIENT_ID, VR::LO, "ZKHA")
            .seq(tags::OTHER_PATIENT_I_DS_SEQUENCE, vec![other])
            .s(
                tags::PATIENT_BIRTH_DATE,
                VR::DA,
                &date_after(patient % 2192).replacen("202", "19", 1),
            )
            .s(
                tags::PATIENT_SEX,
                VR::CS,
                if patient % 2 == 0 { "F" } else { "M" },
            )
            .s(tags::STUDY_INSTANCE_UID, VR::UI, &study_uid)
            .s(tags::STUDY_DATE, VR::DA, &date)
            .s(
                tags::STUDY_TIME,
                VR::TM,
                &format!("{:02}{:02}00", 8 + i % 10, i % 60),
            )
            .s(tags::REFERRING_PHYSICIAN_NAME, VR::PN, "")
            .s(tags::STUDY_ID, VR::SH, &format!("{}", i % 100_000))
            .s(tags::ACCESSION_NUMBER, VR::SH, &format!("ACC{i:07}"))
            .s(tags::STUDY_DESCRIPTION, VR::LO, description)
            .s(tags::MODALITY, VR::CS, modality)
            .s(tags::SERIES_INSTANCE_UID, VR::UI, &series_uid)
            .is(tags::SERIES_NUMBER, 1)
            .s(tags::SERIES_DESCRIPTION, VR::LO, description)
            .s(tags::CONVERSION_TYPE, VR::CS, "SYN")
            .is(tags::INSTANCE_NUMBER, 1)
            .s(tags::MANUFACTURER, VR::LO, modules::MANUFACTURER)
            .s(tags::INSTITUTION_NAME, VR::LO, modules::INSTITUTION);
        modules::sop_common(
            &mut ds,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
            &sop_uid,
            None,
            (&date, "120000"),
        );
        modules::image_pixel(
            &mut ds,
            Mono {
                rows,
                cols,
                bits_allocated: 16,
                bits_stored: 12,
                signed: false,
            },
        );
        ds.bytes(tags::PIXEL_DATA, VR::OW, pixels.clone());
        let obj = into_file_object(ds, uids::EXPLICIT_VR_LITTLE_ENDIAN)?;
        write_file(&obj, &dir.join(format!("ST{:06}.dcm", i + 1)))?;
    }
    eprintln!(
        "wrote {count} studies of one instance to {} in {:.2?}",
        dir.display(),
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsns_pass_the_11_proof_and_dates_are_dates() {
        for n in [0, 1, 99, 5_000, 12_345] {
            assert!(is_valid_bsn(&bsn(n)), "{}", bsn(n));
        }
        assert_eq!(date_after(0), "20200101");
        assert_eq!(date_after(59), "20200229");
        assert_eq!(date_after(366), "20210101");
        assert_eq!(date_after(2191), "20251231");
    }
}
