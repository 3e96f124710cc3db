//! The audit: search the journal by patient, study, person and period; export as JSON lines and CSV; the per-patient report (AVG art. 15 / NEN 7513).

super::unbuilt_section!();
