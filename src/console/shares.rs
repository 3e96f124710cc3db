//! Every grant: state, recipient, holder, delegations as a tree, accesses; revoke with a reason.

super::unbuilt_section!();
