//! C-STORE SCU (placeholder).
