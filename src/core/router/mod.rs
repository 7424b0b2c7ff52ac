//! The router's decision-making and bookkeeping, kept apart from its HTTP shell:
//! `selection` decides which peers a request is offered to and tracks their health (a pure
//! state machine fed with events and the time), `peers` is the durable peer book.

pub mod peers;
pub mod selection;
