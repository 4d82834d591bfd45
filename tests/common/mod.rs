//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod fault_server;
pub mod fixtures;
pub mod host;
pub mod kmip_quirks;
pub mod mysql;
pub mod pykmip;
pub mod vectors;
