//! The operator console (`lobstah tui`): a client of `core`. Not built yet.
