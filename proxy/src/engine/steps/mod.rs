//! The steps the driver runs, one per payment or refund at a time: each loads its record,
//! makes the one WeChat call the record owes, lets the pure rules decide, and commits the
//! decision before anything else is scheduled.

mod payment;
mod refund;

pub(super) use payment::{Counter, apply_transition, facts_of};
