//! QIDO-RS: lands from branch `qido`.
