//! Sharing a study: series with thumbnails, what leaves the house, recipient, expiry, legal basis; the result with link, code, QR code and the referral sheet.

super::unbuilt_section!();
