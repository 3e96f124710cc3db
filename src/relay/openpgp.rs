//! OpenPGP keys, packages and receipts (placeholder).
