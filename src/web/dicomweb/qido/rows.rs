//! The candidate results: the covered study, its covered series and
//! instances in a stable order, and the value of each attribute the
//! records keep, as seen from one result.

use std::collections::BTreeMap;

use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;

use super::attributes::known_attribute;
use super::element::Element;
use super::{Covered, Level, PathScope};
use crate::store::{InstanceKey, InstanceRecord, SeriesRecord, StudyRecord, Uid};

type Instance<'a> = (&'a InstanceKey, &'a InstanceRecord);

pub(super) struct SeriesView<'a> {
    pub uid: &'a Uid,
    pub record: &'a SeriesRecord,
    /// Covered instances, by Instance Number then SOP Instance UID.
    pub instances: Vec<Instance<'a>>,
}

/// The study as the grant lets it be seen.
pub(super) struct StudyView<'a> {
    pub record: &'a StudyRecord,
    /// Series with at least one covered instance, by Series Number then
    /// UID: a series whose every instance is excluded does not show.
    pub series: Vec<SeriesView<'a>>,
    modalities: Vec<String>,
    sop_classes: Vec<String>,
    instance_count: usize,
    /// The BSN as it would appear in a value (an eight-digit BSN lost its
    /// leading zero when it was normalized).
    bsn: Option<String>,
}

/// Missing numbers sort last.
fn number_order(n: Option<i64>) -> (bool, i64) {
    (n.is_none(), n.unwrap_or(0))
}

impl<'a> StudyView<'a> {
    pub fn new(covered: &Covered<'a>) -> StudyView<'a> {
        let study = covered.study;
        let mut by_uid: BTreeMap<&Uid, SeriesView<'a>> = covered
            .series
            .iter()
            .map(|&(uid, record)| {
                let view = SeriesView {
                    uid,
                    record,
                    instances: Vec::new(),
                };
                (uid, view)
            })
            .collect();
        for &(key, record) in &covered.instances {
            if key.study != study.study_uid {
                continue;
            }
            if let Some(series) = by_uid.get_mut(&key.series) {
                series.instances.push((key, record));
            }
        }
        let mut series: Vec<SeriesView<'a>> = by_uid
            .into_values()
            .filter(|s| !s.instances.is_empty())
            .collect();
        series.sort_by(|a, b| {
            (number_order(a.record.attrs.series_number), a.uid)
                .cmp(&(number_order(b.record.attrs.series_number), b.uid))
        });
        for s in &mut series {
            s.instances.sort_by(|(ka, ra), (kb, rb)| {
                (number_order(ra.attrs.instance_number), &ka.sop)
                    .cmp(&(number_order(rb.attrs.instance_number), &kb.sop))
            });
        }
        let mut modalities: Vec<String> = series
            .iter()
            .map(|s| s.record.attrs.modality.clone())
            .filter(|m| !m.is_empty())
            .collect();
        modalities.sort();
        modalities.dedup();
        let mut sop_classes: Vec<String> = series
            .iter()
            .flat_map(|s| &s.instances)
            .map(|(_, r)| r.attrs.sop_class_uid.clone())
            .collect();
        sop_classes.sort();
        sop_classes.dedup();
        let bsn = study
            .patient
            .bsn
            .as_deref()
            .map(|b| match b.strip_prefix('0') {
                Some(rest) => rest.to_string(),
                None => b.to_string(),
            });
        StudyView {
            record: study,
            instance_count: series.iter().map(|s| s.instances.len()).sum(),
            series,
            modalities,
            sop_classes,
            bsn,
        }
    }

    /// Whether a text value holds the BSN, however its digits are
    /// separated.
    pub fn mentions_bsn(&self, value: &str) -> bool {
        let Some(bsn) = &self.bsn else {
            return false;
        };
        let digits: String = value.chars().filter(char::is_ascii_digit).collect();
        digits.contains(bsn.as_str())
    }

    /// The candidates at `level` under `path`, in result order.
    pub fn rows<'v>(&'v self, level: Level, path: &PathScope, base: &'v str) -> Vec<Row<'v, 'a>> {
        if path
            .study
            .as_ref()
            .is_some_and(|s| *s != self.record.study_uid)
        {
            return Vec::new();
        }
        let series: Vec<&'v SeriesView<'a>> = self
            .series
            .iter()
            .filter(|s| path.series.as_ref().is_none_or(|uid| uid == s.uid))
            .collect();
        if path.series.is_some() && series.is_empty() {
            return Vec::new();
        }
        let row = |series, instance| Row {
            study: self,
            series,
            instance,
            base,
        };
        match level {
            Level::Studies => vec![row(None, None)],
            Level::Series => series.into_iter().map(|s| row(Some(s), None)).collect(),
            Level::Instances => series
                .into_iter()
                .flat_map(|s| s.instances.iter().map(move |&i| row(Some(s), Some(i))))
                .collect(),
        }
    }
}

/// One candidate result: a study, a series of it, or an instance of that.
#[derive(Clone, Copy)]
pub(super) struct Row<'v, 'a> {
    pub study: &'v StudyView<'a>,
    pub series: Option<&'v SeriesView<'a>>,
    pub instance: Option<Instance<'a>>,
    base: &'v str,
}

impl<'v, 'a> Row<'v, 'a> {
    pub fn level(&self) -> Level {
        match (self.series, self.instance) {
            (_, Some(_)) => Level::Instances,
            (Some(_), None) => Level::Series,
            (None, None) => Level::Studies,
        }
    }

    /// The covered instances under this result, as instance results.
    pub fn children(&self) -> impl Iterator<Item = Row<'v, 'a>> + use<'v, 'a> {
        let (study, base) = (self.study, self.base);
        let series: &'v [SeriesView<'a>] = match (self.series, self.instance) {
            (_, Some(_)) => &[],
            (Some(s), None) => std::slice::from_ref(s),
            (None, None) => &study.series,
        };
        series.iter().flat_map(move |s| {
            s.instances.iter().map(move |&i| Row {
                study,
                series: Some(s),
                instance: Some(i),
                base,
            })
        })
    }

    /// The instance whose stored metadata stands for this result.
    pub fn representative(&self) -> Option<&'a InstanceKey> {
        match self.instance {
            Some((key, _)) => Some(key),
            None => self
                .children()
                .next()
                .and_then(|c| c.instance)
                .map(|(k, _)| k),
        }
    }

    fn retrieve_url(&self) -> String {
        let mut url = format!("{}/studies/{}", self.base, self.study.record.study_uid);
        if let Some(series) = self.series {
            url.push_str(&format!("/series/{}", series.uid));
        }
        if let Some((key, _)) = self.instance {
            url.push_str(&format!("/instances/{}", key.sop));
        }
        url
    }

    /// The value of an attribute the records keep, if this result has it
    /// (an instance has its series' and study's; a study has no modality).
    /// A value holding the BSN comes out empty, except the Patient ID as
    /// received.
    pub fn element(&self, tag: Tag) -> Option<Element> {
        let known = known_attribute(tag)?;
        if known.level.is_some_and(|l| l > self.level()) {
            return None;
        }
        let element = self.record_value(tag, known.vr)?;
        let hides_bsn =
            tag != tags::PATIENT_ID && element.any_text(&|v| self.study.mentions_bsn(v));
        Some(if hides_bsn {
            element.emptied()
        } else {
            element
        })
    }

    fn record_value(&self, tag: Tag, vr: VR) -> Option<Element> {
        let study = self.study.record;
        let patient = &study.patient;
        let text = |value: &str| Some(Element::text(vr, value));
        let count = |n: usize| Some(Element::number(vr, i64::try_from(n).ok()));
        if let Some(element) = match tag {
            tags::SPECIFIC_CHARACTER_SET => text("ISO_IR 192"),
            tags::INSTANCE_AVAILABILITY => text("ONLINE"),
            tags::RETRIEVE_URL => text(&self.retrieve_url()),
            tags::STUDY_DATE => text(&study.attrs.study_date),
            tags::STUDY_TIME => text(&study.attrs.study_time),
            tags::ACCESSION_NUMBER => text(&study.attrs.accession_number),
            tags::MODALITIES_IN_STUDY => Some(Element::texts(vr, self.study.modalities.clone())),
            tags::SOP_CLASSES_IN_STUDY => Some(Element::texts(vr, self.study.sop_classes.clone())),
            tags::INSTITUTION_NAME => text(&study.attrs.institution_name),
            tags::REFERRING_PHYSICIAN_NAME => text(&study.attrs.referring_physician),
            tags::TIMEZONE_OFFSET_FROM_UTC => text(&study.attrs.timezone_offset),
            tags::STUDY_DESCRIPTION => text(&study.attrs.study_description),
            tags::PATIENT_NAME => text(&patient.name),
            tags::PATIENT_ID => text(&patient.id),
            tags::ISSUER_OF_PATIENT_ID => text(&patient.issuer),
            tags::PATIENT_BIRTH_DATE => text(&patient.birth_date),
            tags::PATIENT_SEX => text(&patient.sex),
            tags::STUDY_INSTANCE_UID => text(study.study_uid.as_str()),
            tags::STUDY_ID => text(&study.attrs.study_id),
            tags::NUMBER_OF_STUDY_RELATED_SERIES => count(self.study.series.len()),
            tags::NUMBER_OF_STUDY_RELATED_INSTANCES => count(self.study.instance_count),
            _ => None,
        } {
            return Some(element);
        }
        if let Some(series) = self.series {
            let attrs = &series.record.attrs;
            if let Some(element) = match tag {
                tags::MODALITY => text(&attrs.modality),
                tags::SERIES_DESCRIPTION => text(&attrs.series_description),
                tags::BODY_PART_EXAMINED => text(&attrs.body_part),
                tags::SERIES_INSTANCE_UID => text(series.uid.as_str()),
                tags::SERIES_NUMBER => Some(Element::number(vr, attrs.series_number)),
                tags::NUMBER_OF_SERIES_RELATED_INSTANCES => count(series.instances.len()),
                tags::PERFORMED_PROCEDURE_STEP_START_DATE => text(&attrs.performed_start_date),
                tags::PERFORMED_PROCEDURE_STEP_START_TIME => text(&attrs.performed_start_time),
                tags::REQUEST_ATTRIBUTES_SEQUENCE => Some(request_attributes(attrs)),
                _ => None,
            } {
                return Some(element);
            }
        }
        let (key, record) = self.instance?;
        let attrs = &record.attrs;
        let small = |n: Option<u16>| Some(Element::number(vr, n.map(i64::from)));
        match tag {
            tags::SOP_CLASS_UID => text(&attrs.sop_class_uid),
            tags::SOP_INSTANCE_UID => text(key.sop.as_str()),
            tags::INSTANCE_NUMBER => Some(Element::number(vr, attrs.instance_number)),
            tags::NUMBER_OF_FRAMES => {
                Some(Element::number(vr, attrs.number_of_frames.map(i64::from)))
            }
            tags::ROWS => small(attrs.rows),
            tags::COLUMNS => small(attrs.columns),
            tags::BITS_ALLOCATED => small(attrs.bits_allocated),
            _ => None,
        }
    }
}

fn request_attributes(attrs: &crate::store::SeriesAttrs) -> Element {
    let items = attrs
        .request_attributes
        .iter()
        .map(|(step, procedure)| {
            vec![
                (
                    tags::SCHEDULED_PROCEDURE_STEP_ID,
                    Element::text(VR::SH, step),
                ),
                (
                    tags::REQUESTED_PROCEDURE_ID,
                    Element::text(VR::SH, procedure),
                ),
            ]
        })
        .collect();
    Element::items(items)
}
