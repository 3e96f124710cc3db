//! The share form's values — as the form first shows them, or as posted —
//! and the grant they ask for. What is wrong is said per field; nothing is
//! issued until nothing is.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::authz::{IssueRequest, LegalBasis, Shape};
use crate::console::Fields;
use crate::store::StudyRecord;
use crate::web::pages::Lang;

/// The expiry choices offered (form value, duration, NL, EN).
pub const EXPIRY_CHOICES: [(&str, u64, &str, &str); 3] = [
    ("24h", 86_400, "24 uur", "24 hours"),
    ("7d", 7 * 86_400, "7 dagen", "7 days"),
    ("30d", 30 * 86_400, "30 dagen", "30 days"),
];

/// The highest delegation depth the form offers (authz allows 5).
pub const MAX_DEPTH: u8 = 5;

/// What the form holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// Ticked series (UIDs).
    pub series: BTreeSet<String>,
    /// By accession number: modalities to leave out.
    pub leave_out: BTreeSet<String>,
    /// By accession number: the patient the study must be for.
    pub patient_id: String,
    pub bsn: String,
    /// `anyone` or `organization`.
    pub recipient: String,
    /// From the address book.
    pub ura: String,
    /// Typed (one not in the address book).
    pub ura_typed: String,
    /// UZI role codes, separated by spaces or commas.
    pub roles: String,
    /// One of [`EXPIRY_CHOICES`], or `date`.
    pub expires: String,
    /// YYYY-MM-DD, with `expires = date`.
    pub until: String,
    pub message: String,
    pub depth: u8,
    /// `referral`, `explicit_consent`, or nothing chosen yet.
    pub legal_basis: String,
    pub consent_note: String,
}

impl Draft {
    /// The form as first shown for `study`: every series ticked but those
    /// of a modality left out by default (`console.exclude_by_default`).
    pub fn initial(study: Option<&StudyRecord>, exclude_by_default: &[String]) -> Draft {
        Draft {
            series: study
                .map(|s| {
                    s.series
                        .iter()
                        .filter(|(_, r)| !exclude_by_default.contains(&r.attrs.modality))
                        .map(|(uid, _)| uid.to_string())
                        .collect()
                })
                .unwrap_or_default(),
            leave_out: exclude_by_default.iter().cloned().collect(),
            recipient: "anyone".into(),
            expires: "7d".into(),
            ..Draft::default()
        }
    }

    pub fn read(fields: &Fields) -> Draft {
        let bounded = |name: &str, max: usize| fields.get(name).chars().take(max).collect();
        Draft {
            series: fields.all("series").into_iter().collect(),
            leave_out: fields
                .all("leave_out")
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            patient_id: bounded("patient_id", 64),
            bsn: bounded("bsn", 16),
            recipient: bounded("recipient", 16),
            ura: bounded("ura", 16),
            ura_typed: bounded("ura_typed", 16),
            roles: bounded("roles", 200),
            expires: bounded("expires", 8),
            until: bounded("until", 16),
            message: bounded("message", 2000),
            depth: fields.get("depth").parse().unwrap_or(0),
            legal_basis: bounded("legal_basis", 32),
            consent_note: bounded("consent_note", 600),
        }
    }

    /// The grant this asks for, or what is wrong with it (in `lang`).
    /// `study`: the study being shared; None: by accession number.
    /// `left_out_later`: `console.exclude_by_default`, see [`scope_of`].
    pub fn request(
        &self,
        lang: Lang,
        study: Option<&StudyRecord>,
        accession: Option<&str>,
        max_ttl: Duration,
        left_out_later: &[String],
    ) -> Result<IssueRequest, Vec<String>> {
        let mut problems = Vec::new();
        let mut shape = Shape {
            message: self.message.trim().to_string(),
            delegation_depth: Some(self.depth.min(MAX_DEPTH)),
            ..Shape::default()
        };
        if let Some(study) = study {
            match scope_of(study, &self.series, left_out_later) {
                Some((series, modalities)) => {
                    shape.series = series;
                    shape.exclude_modalities = modalities;
                }
                None => problems.push(
                    lang.pick(
                        "Vink ten minste één serie aan.",
                        "Tick at least one series.",
                    )
                    .to_string(),
                ),
            }
        } else {
            shape.exclude_modalities = self.leave_out.iter().cloned().collect();
            if self.patient_id.trim().is_empty() && self.bsn.trim().is_empty() {
                problems.push(
                    lang.pick(
                        "Geef het patiëntnummer of het BSN: een accessienummer komt ook voor bij onderzoeken van andere patiënten (cd's, andere ziekenhuizen).",
                        "Give the patient ID or the BSN: an accession number also occurs on other patients' studies (CDs, other hospitals).",
                    )
                    .to_string(),
                );
            }
        }
        if self.recipient == "organization" {
            {
                let ura = if self.ura_typed.trim().is_empty() {
                    self.ura.trim()
                } else {
                    self.ura_typed.trim()
                };
                if ura.is_empty() {
                    problems.push(
                        lang.pick(
                            "Kies de organisatie (of typ haar URA-nummer).",
                            "Choose the organisation (or type its URA number).",
                        )
                        .to_string(),
                    );
                } else {
                    shape.to_ura = Some(ura.to_string());
                }
                shape.roles = self
                    .roles
                    .split([',', ' ', ';'])
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_string)
                    .collect();
            }
        }
        match self.lifetime(lang, max_ttl) {
            Ok(seconds) => shape.expires = Some(format!("{seconds}s")),
            Err(problem) => problems.push(problem),
        }
        let legal_basis = match self.legal_basis.as_str() {
            "referral" => Some(LegalBasis::Referral),
            "explicit_consent" if self.consent_note.trim().is_empty() => {
                problems.push(
                    lang.pick(
                        "Uitdrukkelijke toestemming: noteer wie toestemming gaf en hoe.",
                        "Explicit consent: note who consented and how.",
                    )
                    .to_string(),
                );
                None
            }
            "explicit_consent" => Some(LegalBasis::ExplicitConsent {
                note: self.consent_note.trim().to_string(),
            }),
            _ => {
                problems.push(
                    lang.pick(
                        "Kies de grondslag: verwijzing (veronderstelde toestemming) of uitdrukkelijke toestemming.",
                        "Choose the legal basis: referral (presumed consent) or explicit consent.",
                    )
                    .to_string(),
                );
                None
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(IssueRequest {
            study_uid: study.map(|s| s.study_uid.to_string()),
            accession: accession.map(str::to_string),
            patient_id: accession.map(|_| self.patient_id.trim().to_string()),
            bsn: accession.map(|_| self.bsn.trim().to_string()),
            source_ae: None,
            legal_basis,
            shape,
        })
    }

    /// Seconds from now until the chosen expiry.
    fn lifetime(&self, lang: Lang, max_ttl: Duration) -> Result<u64, String> {
        let too_long = || {
            format!(
                "{} {} {}",
                lang.pick("Een deling geldt ten hoogste", "A share lasts at most"),
                max_ttl.as_secs() / 86_400,
                lang.pick("dagen (grants.max_ttl).", "days (grants.max_ttl).")
            )
        };
        let seconds = match EXPIRY_CHOICES.iter().find(|(v, ..)| *v == self.expires) {
            Some((_, seconds, ..)) => *seconds,
            None if self.expires == "date" => until_end_of(&self.until).ok_or_else(|| {
                lang.pick(
                    "Kies een datum in de toekomst (JJJJ-MM-DD) tot wanneer de deling geldt.",
                    "Choose a date in the future (YYYY-MM-DD) until which the share lasts.",
                )
                .to_string()
            })?,
            None => {
                return Err(lang
                    .pick(
                        "Kies hoe lang de deling geldt.",
                        "Choose how long the share lasts.",
                    )
                    .to_string());
            }
        };
        if seconds > max_ttl.as_secs() {
            return Err(too_long());
        }
        Ok(seconds)
    }

    /// Series ticked, instances and bytes: what leaves the house.
    pub fn leaving(&self, study: &StudyRecord) -> (usize, u64, u64) {
        study
            .series
            .iter()
            .filter(|(uid, _)| self.series.contains(uid.as_str()))
            .fold((0, 0, 0), |(n, i, b), (_, s)| {
                (n + 1, i + s.num_instances, b + s.bytes)
            })
    }
}

/// Seconds from now to the end of `date` (YYYY-MM-DD), local time; None
/// when it is not a date or has passed.
fn until_end_of(date: &str) -> Option<u64> {
    let day: jiff::civil::Date = date.trim().parse().ok()?;
    let end = day
        .at(23, 59, 59, 0)
        .to_zoned(jiff::tz::TimeZone::system())
        .ok()?;
    let seconds = end.timestamp().as_second() - jiff::Timestamp::now().as_second();
    u64::try_from(seconds).ok().filter(|s| *s > 0)
}

/// The scope for the ticked series of `study`: when nothing is unticked,
/// the whole study (so also series that still arrive); for a study still
/// arriving, the whole study minus some modalities when exactly the series
/// of those modalities are unticked; else exactly the ticked series (a
/// late series does not join). Either way a later series of a modality
/// left out by default (`left_out_later`, `console.exclude_by_default`)
/// stays out unless a series of that modality is ticked: shared with the
/// default ticks while only the CT is here, the PR that comes later is not
/// shared. None when nothing of the study is ticked.
pub fn scope_of(
    study: &StudyRecord,
    ticked: &BTreeSet<String>,
    left_out_later: &[String],
) -> Option<(Vec<String>, Vec<String>)> {
    let (on, off): (Vec<_>, Vec<_>) = study
        .series
        .iter()
        .partition(|(uid, _)| ticked.contains(uid.as_str()));
    if on.is_empty() {
        return None;
    }
    let on_modalities: BTreeSet<&str> = on.iter().map(|(_, s)| s.attrs.modality.as_str()).collect();
    let off_modalities: BTreeSet<&str> =
        off.iter().map(|(_, s)| s.attrs.modality.as_str()).collect();
    let whole_minus = |unticked: BTreeSet<&str>| {
        let mut out: BTreeSet<String> = unticked.into_iter().map(str::to_string).collect();
        out.extend(
            left_out_later
                .iter()
                .filter(|m| !on_modalities.contains(m.as_str()))
                .cloned(),
        );
        Some((Vec::new(), out.into_iter().collect()))
    };
    if off.is_empty() {
        return whole_minus(BTreeSet::new());
    }
    let clean_cut = !study.is_complete()
        && !off_modalities.contains("")
        && on_modalities.is_disjoint(&off_modalities);
    if clean_cut {
        return whole_minus(off_modalities);
    }
    Some((
        on.iter().map(|(uid, _)| uid.to_string()).collect(),
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SeriesAttrs, SeriesRecord, Timestamp, Uid};

    fn study(series: &[(&str, &str)]) -> StudyRecord {
        StudyRecord {
            study_uid: Uid::parse("1.2.3").unwrap(),
            patient: Default::default(),
            attrs: Default::default(),
            series: series
                .iter()
                .map(|(uid, modality)| {
                    (
                        Uid::parse(uid).unwrap(),
                        SeriesRecord {
                            attrs: SeriesAttrs {
                                modality: modality.to_string(),
                                ..SeriesAttrs::default()
                            },
                            num_instances: 10,
                            bytes: 1000,
                            sop_classes: Default::default(),
                            last_arrival: Timestamp(1),
                        },
                    )
                })
                .collect(),
            first_arrival: Timestamp(1),
            last_arrival: Timestamp(1),
            completed_at: None,
            sources: Default::default(),
        }
    }

    fn ticked(uids: &[&str]) -> BTreeSet<String> {
        uids.iter().map(|u| u.to_string()).collect()
    }

    #[test]
    fn defaults_leave_pr_out_and_the_scope_says_so() {
        let pr = ["PR".to_string()];
        let s = study(&[("1.1", "CT"), ("1.2", "CT"), ("1.3", "PR")]);
        let draft = Draft::initial(Some(&s), &["PR".into()]);
        assert_eq!(draft.series, ticked(&["1.1", "1.2"]));
        assert_eq!(draft.leaving(&s), (2, 20, 2000));
        assert_eq!(
            scope_of(&s, &draft.series, &pr),
            Some((vec![], vec!["PR".into()]))
        );
        assert_eq!(
            scope_of(&s, &ticked(&["1.1", "1.2", "1.3"]), &pr),
            Some((vec![], vec![]))
        );
        assert_eq!(
            scope_of(&s, &ticked(&["1.1"]), &pr),
            Some((vec!["1.1".into()], vec![]))
        );
        assert_eq!(scope_of(&s, &ticked(&[]), &pr), None);
        assert_eq!(scope_of(&s, &ticked(&["9.9"]), &pr), None);
        // complete: exactly the ticked series, nothing that comes late
        let complete = StudyRecord {
            completed_at: Some(Timestamp(2)),
            ..s.clone()
        };
        assert_eq!(
            scope_of(&complete, &draft.series, &pr),
            Some((vec!["1.1".into(), "1.2".into()], vec![]))
        );
        assert_eq!(
            scope_of(&complete, &ticked(&["1.1", "1.2", "1.3"]), &pr),
            Some((vec![], vec![]))
        );
    }

    #[test]
    fn a_modality_left_out_by_default_stays_out_when_it_arrives_later() {
        let pr = ["PR".to_string()];
        // only the CT is here yet; shared with the default ticks
        let arriving = study(&[("1.1", "CT"), ("1.2", "CT")]);
        let draft = Draft::initial(Some(&arriving), &pr);
        assert_eq!(draft.series, ticked(&["1.1", "1.2"]));
        assert_eq!(
            scope_of(&arriving, &draft.series, &pr),
            Some((vec![], vec!["PR".into()]))
        );
        // a clean cut of SR too: both stay out
        let s = study(&[("1.1", "CT"), ("1.2", "SR")]);
        assert_eq!(
            scope_of(&s, &ticked(&["1.1"]), &pr),
            Some((vec![], vec!["PR".into(), "SR".into()]))
        );
        // a PR series ticked: PR is wanted, later PR joins
        let with_pr = study(&[("1.1", "CT"), ("1.3", "PR")]);
        assert_eq!(
            scope_of(&with_pr, &ticked(&["1.1", "1.3"]), &pr),
            Some((vec![], vec![]))
        );
        // complete and all ticked: nothing later but PR joins
        let complete = StudyRecord {
            completed_at: Some(Timestamp(2)),
            ..arriving.clone()
        };
        assert_eq!(
            scope_of(&complete, &ticked(&["1.1", "1.2"]), &pr),
            Some((vec![], vec!["PR".into()]))
        );
        // no default: the whole study
        assert_eq!(
            scope_of(&arriving, &draft.series, &[]),
            Some((vec![], vec![]))
        );
    }

    #[test]
    fn what_is_missing_is_said_and_nothing_is_asked() {
        let s = study(&[("1.1", "CT")]);
        let max = Duration::from_secs(90 * 86_400);
        let draft = Draft {
            legal_basis: String::new(),
            ..Draft::initial(Some(&s), &[])
        };
        let problems = draft
            .request(Lang::En, Some(&s), None, max, &[])
            .unwrap_err();
        assert!(problems[0].contains("legal basis"), "{problems:?}");
        let consent = Draft {
            legal_basis: "explicit_consent".into(),
            ..draft.clone()
        };
        let problems = consent
            .request(Lang::En, Some(&s), None, max, &[])
            .unwrap_err();
        assert!(problems[0].contains("who consented"), "{problems:?}");
        let long = Draft {
            legal_basis: "referral".into(),
            expires: "30d".into(),
            ..draft.clone()
        };
        let short = Duration::from_secs(7 * 86_400);
        assert!(long.request(Lang::En, Some(&s), None, short, &[]).is_err());
        let past = Draft {
            expires: "date".into(),
            until: "2001-01-01".into(),
            ..long.clone()
        };
        assert!(past.request(Lang::En, Some(&s), None, max, &[]).is_err());
        let ok = long.request(Lang::En, Some(&s), None, max, &[]).unwrap();
        assert_eq!(ok.legal_basis, Some(LegalBasis::Referral));
        assert_eq!(ok.shape.expires.as_deref(), Some("2592000s"));
        assert_eq!(ok.study_uid.as_deref(), Some("1.2.3"));
    }
}
