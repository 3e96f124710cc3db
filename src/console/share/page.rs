//! The share form, as first shown and as shown again with what was wrong.
//! The summary of what leaves the house is computed here for the ticks
//! the form carries; share.js keeps it current as boxes change.

use hyper::Response;
use maud::{Markup, html};

use super::draft::{Draft, EXPIRY_CHOICES, MAX_DEPTH};
use crate::console::pages::{self, Head, Section, csrf_field};
use crate::console::studies::{patient_name, study_date, text};
use crate::console::{Console, Ctx};
use crate::store::{SeriesRecord, StudyRecord, Uid};
use crate::web::Body;
use crate::web::pages::Lang;

/// `GET /console/share` without a number: where to type it.
pub fn ask_accession(
    console: &Console,
    ctx: &Ctx,
    accession: &str,
    problem: Option<&str>,
) -> Response<Body> {
    let lang = ctx.lang;
    let title = lang.pick("Delen op accessienummer", "Share by accession number");
    let body = html! {
        h1 { (title) }
        p {
            (lang.pick(
                "Voor een onderzoek dat nog gemaakt wordt (spoed): de deling geldt voor het eerste onderzoek met dit accessienummer en deze patiënt dat binnenkomt.",
                "For a study still being made (urgent): the share covers the first study with this accession number and this patient to arrive."))
        }
        @if let Some(problem) = problem {
            p.error role="alert" { (problem) }
        }
        form.search method="get" action="/console/share" {
            label { (lang.pick("Accessienummer", "Accession number"))
                input type="text" name="accession" value=(accession) maxlength="16" required; }
            button type="submit" { (lang.pick("Verder", "Continue")) }
        }
    };
    console.page(ctx, title, Section::Studies, Head::default(), body)
}

/// The form for `study`, or by `accession` for a study not here yet.
pub fn form(
    console: &Console,
    ctx: &Ctx,
    study: Option<&StudyRecord>,
    accession: Option<&str>,
    draft: &Draft,
    problems: &[String],
) -> Response<Body> {
    let lang = ctx.lang;
    let title = match study {
        Some(s) => format!(
            "{} {}",
            lang.pick("Delen:", "Share:"),
            patient_name(lang, &s.patient.name)
        ),
        None => format!(
            "{} {}",
            lang.pick("Delen op accessienummer", "Share by accession number"),
            accession.unwrap_or("")
        ),
    };
    let action = match study {
        Some(s) => format!("/console/share/{}", s.study_uid),
        None => "/console/share".to_string(),
    };
    let book = console.app.relay.book.current();
    let max_ttl = console.config.grants.max_ttl.as_secs();
    let body = html! {
        h1 { (title) }
        @match study {
            Some(s) => (patient_box(lang, s)),
            None => div.notice {
                p {
                    strong { (lang.pick("Nog niet binnen.", "Not here yet.")) } " "
                    (lang.pick(
                        "Er is (nog) geen onderzoek met dit accessienummer. De deling geldt voor het eerste onderzoek met dit nummer en deze patiënt dat binnenkomt; de ontvanger kan het openen zodra het er is (tot dan ziet die ‘nog niet binnen’). De patiënt staat op het resultaat zodra het onderzoek er is.",
                        "There is no study with this accession number (yet). The share covers the first study with this number and this patient to arrive; the recipient can open it as soon as it is here (until then they see ‘not arrived yet’). The patient shows on the result once the study is here."))
                }
            },
        }
        @if !problems.is_empty() {
            div.error.problems role="alert" {
                p { strong { (lang.pick("Niet gedeeld:", "Not shared:")) } }
                ul { @for p in problems { li { (p) } } }
            }
        }
        form.share method="post" action=(action) {
            (csrf_field(ctx))
            @if let Some(acc) = accession {
                input type="hidden" name="accession" value=(acc);
            }
            @match study {
                Some(s) => (series_table(lang, s, draft)),
                None => {
                    (patient_fields(lang, draft))
                    (leave_out(lang, &console.config.console.exclude_by_default, draft))
                }
            }
            (leaving(lang, study, accession, draft, &console.config.console.exclude_by_default))
            fieldset {
                legend { (lang.pick("Voor wie", "For whom")) }
                label {
                    input type="radio" name="recipient" value="anyone" checked[draft.recipient != "organization"];
                    " " (lang.pick("Wie de link of code als eerste gebruikt (die houdt hem)",
                                   "Whoever uses the link or code first (they keep it)"))
                }
                br;
                label {
                    input type="radio" name="recipient" value="organization" checked[draft.recipient == "organization"];
                    " " (lang.pick("Alleen een organisatie (UZI-pas van die URA):", "Only an organisation (a UZI card of that URA):"))
                }
                div.indent {
                    @if !book.is_empty() {
                        label { (lang.pick("Uit het adresboek", "From the address book")) " "
                            select name="ura" {
                                option value="" { "—" }
                                @for g in book.iter() {
                                    option value=(g.ura) selected[g.ura == draft.ura] { (g.name) " (URA " (g.ura) ")" }
                                }
                            }
                        }
                        " "
                    }
                    label {
                        @if book.is_empty() { (lang.pick("URA-nummer", "URA number")) }
                        @else { (lang.pick("of URA-nummer", "or URA number")) }
                        " "
                        input type="text" name="ura_typed" value=(draft.ura_typed) inputmode="numeric" maxlength="8" size="10"; }
                    br;
                    label { (lang.pick("Rolcodes (optioneel, bijv. 01.039)", "Role codes (optional, e.g. 01.039)")) " "
                        input type="text" name="roles" value=(draft.roles) size="24"; }
                }
            }
            fieldset {
                legend { (lang.pick("Geldig", "Valid for")) }
                @for (value, seconds, nl, en) in EXPIRY_CHOICES {
                    @if seconds <= max_ttl {
                        label { input type="radio" name="expires" value=(value) checked[draft.expires == value]; " " (lang.pick(nl, en)) }
                        " "
                    }
                }
                label {
                    input type="radio" name="expires" value="date" checked[draft.expires == "date"];
                    " " (lang.pick("tot en met", "until")) " "
                }
                input type="date" name="until" value=(draft.until) aria-label=(lang.pick("Datum", "Date"));
            }
            label.block { (lang.pick("Bericht voor de ontvanger (optioneel)", "Message for the recipient (optional)"))
                textarea name="message" maxlength="2000" { (draft.message) } }
            label.block { (lang.pick("Mag worden doorgegeven", "May be passed on")) " "
                select name="depth" {
                    @for n in 0..=MAX_DEPTH {
                        option value=(n) selected[n == draft.depth] {
                            @if n == 0 { (lang.pick("niet", "not at all")) }
                            @else if n == 1 { (lang.pick("1 keer", "once")) }
                            @else { (n) " " (lang.pick("keer (in een keten)", "times (in a chain)")) }
                        }
                    }
                }
            }
            fieldset.legal {
                legend { (lang.pick("Grondslag (verplicht)", "Legal basis (required)")) }
                label {
                    input type="radio" name="legal_basis" value="referral" required checked[draft.legal_basis == "referral"];
                    " " (lang.pick("Verwijzing: toestemming van de patiënt verondersteld (behandelrelatie)",
                                   "Referral: the patient's consent presumed (treatment relationship)"))
                }
                br;
                label {
                    input type="radio" name="legal_basis" value="explicit_consent" checked[draft.legal_basis == "explicit_consent"];
                    " " (lang.pick("Uitdrukkelijke toestemming, vastgelegd:", "Explicit consent, recorded:"))
                }
                label.block { (lang.pick("Wie gaf toestemming, en hoe", "Who consented, and how"))
                    textarea name="consent_note" maxlength="500" { (draft.consent_note) } }
            }
            button type="submit" { (lang.pick("Delen", "Share")) }
            " "
            a.button.secondary href="/console/studies" { (lang.pick("Annuleren", "Cancel")) }
        }
    };
    let head = Head {
        scripts: vec!["share.js"],
        ..Head::default()
    };
    console.page(ctx, &title, Section::Studies, head, body)
}

/// Who and what: the patient, the study, whether it is complete.
pub fn patient_box(lang: Lang, s: &StudyRecord) -> Markup {
    html! {
        div.patient {
            p {
                strong.name { (patient_name(lang, &s.patient.name)) }
                " · ID " (text(&s.patient.id))
                @if !s.patient.birth_date.trim().is_empty() {
                    " · " (lang.pick("geb.", "born")) " " (pages::dicom_date(lang, &s.patient.birth_date))
                }
                @if let Some(bsn) = &s.patient.bsn { " · BSN " (bsn) }
            }
            p {
                (study_date(lang, &s.attrs.study_date, &s.attrs.study_time)) " · "
                (text(&s.attrs.study_description))
                @if !s.attrs.accession_number.trim().is_empty() {
                    " · " (lang.pick("acc.", "acc.")) " " (text(&s.attrs.accession_number))
                }
                " · "
                @if s.is_complete() {
                    span.state.complete { (lang.pick("compleet", "complete")) }
                } @else {
                    span.state.arriving {
                        (lang.pick("komt nog binnen", "still arriving")) ": "
                        (s.num_instances()) " " (lang.pick("beelden tot nu toe", "images so far"))
                    }
                }
            }
        }
    }
}

/// The series in viewing order (series number, then UID).
pub fn in_order(study: &StudyRecord) -> Vec<(&Uid, &SeriesRecord)> {
    let mut series: Vec<(&Uid, &SeriesRecord)> = study.series.iter().collect();
    series.sort_by(|a, b| {
        (a.1.attrs.series_number.unwrap_or(i64::MAX), a.0)
            .cmp(&(b.1.attrs.series_number.unwrap_or(i64::MAX), b.0))
    });
    series
}

fn series_table(lang: Lang, s: &StudyRecord, draft: &Draft) -> Markup {
    html! {
        fieldset {
            legend { (lang.pick("Series", "Series")) }
            table.series {
                thead { tr {
                    th scope="col" { (lang.pick("Meesturen", "Include")) }
                    th scope="col" { span.sr-only { (lang.pick("Voorbeeld", "Preview")) } }
                    th scope="col" { (lang.pick("Modaliteit", "Modality")) }
                    th scope="col" { (lang.pick("Beschrijving", "Description")) }
                    th scope="col" { (lang.pick("Beelden", "Images")) }
                    th scope="col" { (lang.pick("Grootte", "Size")) }
                } }
                tbody {
                    @for (uid, series) in in_order(s) {
                        @let id = format!("series-{uid}");
                        tr {
                            td {
                                input type="checkbox" name="series" value=(uid) id=(id)
                                    data-instances=(series.num_instances) data-bytes=(series.bytes)
                                    data-modality=(series.attrs.modality)
                                    checked[draft.series.contains(uid.as_str())];
                            }
                            td {
                                img.thumb src={ "/console/share/" (s.study_uid) "/thumb/" (uid) }
                                    alt="" loading="lazy" width="64" height="64";
                            }
                            td { label for=(id) { strong { (text(&series.attrs.modality)) } } }
                            td {
                                label for=(id) {
                                    @if let Some(n) = series.attrs.series_number { span.muted { "#" (n) " " } }
                                    (text(&series.attrs.series_description))
                                }
                            }
                            td { (series.num_instances) }
                            td { (pages::size(series.bytes)) }
                        }
                    }
                }
            }
        }
    }
}

/// By accession number: whose study it must be. Accession numbers repeat
/// across RISes and imported CDs; the share pins only to this patient's.
fn patient_fields(lang: Lang, draft: &Draft) -> Markup {
    html! {
        fieldset {
            legend { (lang.pick("Patiënt", "Patient")) }
            p.muted { (lang.pick(
                "Het patiëntnummer of het BSN (of beide). Een onderzoek met dit accessienummer van een andere patiënt wordt niet gedeeld; u ziet het bij de deling.",
                "The patient ID or the BSN (or both). A study with this accession number of another patient is not shared; you see it with the share.")) }
            label { (lang.pick("Patiëntnummer", "Patient ID"))
                input type="text" name="patient_id" value=(draft.patient_id) maxlength="64" autocomplete="off"; }
            " "
            label { "BSN"
                input type="text" name="bsn" value=(draft.bsn) maxlength="16" inputmode="numeric" autocomplete="off"; }
        }
    }
}

fn leave_out(lang: Lang, modalities: &[String], draft: &Draft) -> Markup {
    html! {
        @if !modalities.is_empty() {
            fieldset {
                legend { (lang.pick("Weglaten", "Leave out")) }
                @for m in modalities {
                    label {
                        input type="checkbox" name="leave_out" value=(m) checked[draft.leave_out.contains(m)];
                        " " (m)
                    }
                    " "
                }
            }
        }
    }
}

/// What leaves the house with the ticks as they are: series, images,
/// bytes, and whose. share.js rewrites the three numbers as boxes change.
fn leaving(
    lang: Lang,
    study: Option<&StudyRecord>,
    accession: Option<&str>,
    draft: &Draft,
    left_out_later: &[String],
) -> Markup {
    html! {
        div.leaving #leaving aria-live="polite" {
            h2 { (lang.pick("Wat het huis verlaat", "What leaves the house")) }
            @match study {
                Some(s) => {
                    @let (series, images, bytes) = draft.leaving(s);
                    p {
                        strong #leaving-series { (series) } " " (lang.pick("series", "series")) ", "
                        strong #leaving-images { (images) } " "
                        span #leaving-images-word data-one=(lang.pick("beeld", "image")) data-many=(lang.pick("beelden", "images")) {
                            @if images == 1 { (lang.pick("beeld", "image")) } @else { (lang.pick("beelden", "images")) }
                        }
                        ", "
                        strong #leaving-bytes { (pages::size(bytes)) }
                        " — " (lang.pick("van", "of")) " "
                        strong { (patient_name(lang, &s.patient.name)) }
                        " (ID " (text(&s.patient.id))
                        @if !s.patient.birth_date.trim().is_empty() {
                            ", " (lang.pick("geb.", "born")) " " (pages::dicom_date(lang, &s.patient.birth_date))
                        }
                        ")"
                    }
                    @let later: Vec<&str> = left_out_later.iter().map(String::as_str).collect();
                    @if !s.is_complete() || !later.is_empty() {
                        p.muted #leaving-later {
                            @if !s.is_complete() {
                                (lang.pick(
                                    "Het onderzoek komt nog binnen. Zijn alleen hele modaliteiten uitgevinkt (zoals PR), dan gaan series die nog komen mee, behalve van die modaliteiten; anders alleen de aangevinkte series.",
                                    "The study is still arriving. With only whole modalities unticked (such as PR), series still to come are included, except of those modalities; otherwise only the ticked series."))
                                " "
                            }
                            @if !later.is_empty() {
                                @match lang {
                                    Lang::Nl => { "Series van " (later.join(", ")) " die later binnenkomen, gaan niet mee, tenzij u er een aanvinkt." }
                                    Lang::En => { (later.join(", ")) " series that arrive later are not included, unless you tick one." }
                                }
                            }
                        }
                    }
                }
                None => {
                    p {
                        (lang.pick("Het onderzoek met accessienummer", "The study with accession number")) " "
                        strong { (accession.unwrap_or("")) } " "
                        (lang.pick("dat als eerste binnenkomt, heel", "that arrives first, all of it"))
                        @if !draft.leave_out.is_empty() {
                            " " (lang.pick("behalve", "except")) " "
                            (draft.leave_out.iter().cloned().collect::<Vec<_>>().join(", "))
                        }
                        "."
                    }
                }
            }
        }
    }
}
