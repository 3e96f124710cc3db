//! Studies pushed to us by other gateways: sender, message, forwarding to the PACS per instance.

super::unbuilt_section!();
