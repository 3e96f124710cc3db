//! The studies as the console lists them: a summary of each, kept in
//! memory and brought up to date from the index's change count
//! (`Index::study_changes`) before each listing, so that 10,000 studies
//! list and search without reading 10,000 study records per page. Only
//! the studies that changed since the last listing are read again; after
//! a restart, or more changes than the index remembers, all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::{Index, StoreError, StudyChanges, StudyRecord, Timestamp, Uid};

/// One study, as a row of the list shows it and a search looks at it.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub study_uid: Uid,
    /// Patient's Name as received (DICOM PN).
    pub patient_name: String,
    pub patient_id: String,
    pub birth_date: String,
    pub bsn: Option<String>,
    pub study_date: String,
    pub study_time: String,
    pub description: String,
    pub accession: String,
    pub modalities: Vec<String>,
    pub num_series: usize,
    pub num_instances: u64,
    pub bytes: u64,
    pub complete: bool,
    pub last_arrival: Timestamp,
    /// `dicom:<AE>`, `relay:<sender>`, `drop-folder`, `reindex`.
    pub sources: Vec<String>,
    /// The name as a search compares it: [`fold`]ed.
    pub name_key: String,
}

impl Summary {
    pub fn of(study: &StudyRecord) -> Summary {
        Summary {
            study_uid: study.study_uid.clone(),
            patient_name: study.patient.name.clone(),
            patient_id: study.patient.id.clone(),
            birth_date: study.patient.birth_date.clone(),
            bsn: study.patient.bsn.clone(),
            study_date: study.attrs.study_date.clone(),
            study_time: study.attrs.study_time.clone(),
            description: study.attrs.study_description.clone(),
            accession: study.attrs.accession_number.clone(),
            modalities: study.modalities().into_iter().map(str::to_string).collect(),
            num_series: study.num_series(),
            num_instances: study.num_instances(),
            bytes: study.bytes(),
            complete: study.is_complete(),
            last_arrival: study.last_arrival,
            sources: study.sources.iter().cloned().collect(),
            name_key: fold(&study.patient.name),
        }
    }
}

/// Text as a search compares it: lower case, DICOM's `^` and `=` between
/// name parts as spaces, runs of white space as one.
pub fn fold(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c == '^' || c == '=' { ' ' } else { c })
        .collect::<String>()
        .to_lowercase();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every study, newest arrival first.
pub type Listing = Arc<Vec<Arc<Summary>>>;

#[derive(Default)]
struct Built {
    /// The index's change count this was built to; None: not built.
    seen: Option<u64>,
    by_uid: HashMap<Uid, Arc<Summary>>,
    listing: Listing,
}

/// The summaries, shared by every console request.
#[derive(Default)]
pub struct Catalogue {
    built: Mutex<Built>,
}

impl Catalogue {
    /// Every study as the index has it now. Blocking (reads what changed).
    pub fn current(&self, index: &dyn Index) -> Result<Listing, StoreError> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        match index.study_changes(built.seen.unwrap_or(u64::MAX)) {
            StudyChanges::Since { now, studies } if studies.is_empty() => {
                built.seen = Some(now);
            }
            StudyChanges::Since { now, studies } => {
                for uid in studies {
                    match index.study(&uid)? {
                        Some(study) => {
                            built.by_uid.insert(uid, Arc::new(Summary::of(&study)));
                        }
                        None => {
                            built.by_uid.remove(&uid);
                        }
                    }
                }
                built.listing = sorted(&built.by_uid);
                built.seen = Some(now);
            }
            StudyChanges::All { now } => {
                // `now` is taken before the read: what changes during it
                // is read again next time
                let by_uid: HashMap<Uid, Arc<Summary>> = index
                    .studies()?
                    .iter()
                    .map(|s| (s.study_uid.clone(), Arc::new(Summary::of(s))))
                    .collect();
                built.listing = sorted(&by_uid);
                built.by_uid = by_uid;
                built.seen = Some(now);
            }
        }
        Ok(built.listing.clone())
    }
}

fn sorted(by_uid: &HashMap<Uid, Arc<Summary>>) -> Listing {
    let mut all: Vec<Arc<Summary>> = by_uid.values().cloned().collect();
    all.sort_by(|a, b| {
        b.last_arrival
            .cmp(&a.last_arrival)
            .then_with(|| a.study_uid.cmp(&b.study_uid))
    });
    Arc::new(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_for_search() {
        assert_eq!(fold("JANSEN^Anna^^Mevr."), "jansen anna mevr.");
        assert_eq!(
            fold("  de  Vries^Ét=ヤマダ^タロウ "),
            "de vries ét ヤマダ タロウ"
        );
    }
}
