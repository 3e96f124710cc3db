//! Forwarding received studies to the local PACS (placeholder).
