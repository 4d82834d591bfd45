//! keyring_okv: a MySQL keyring plugin that keeps keys in a KMIP 1.1 key manager.
//!
//! Layers, from the outside in: `ffi` (the only module with `unsafe`, the mysqld boundary),
//! `keyring` (MySQL keyring semantics), `connector` (failover and mutual TLS sessions),
//! `kmip` (TTLV codec and KMIP 1.1 messages) and `config` (the configuration directory).
#![deny(unsafe_code)]

pub mod config;
pub mod connector;
pub mod keyring;
pub mod kmip;
pub mod logging;
pub mod plugin;

#[allow(unsafe_code)]
mod ffi;
