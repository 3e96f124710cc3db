//! What has arrived: the study list and search.

super::unbuilt_section!();
