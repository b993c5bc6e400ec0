//! Runnel's broker (being assembled: only the protocol module is wired while the storage engine lands).

pub mod protocol;
