//! The core of keyring_okv: everything the libraries mysqld and mariadbd load share, with no C
//! types and no unsafe code.
//!
//! Layers, from the outside in: `plugin` (the configuration in force and the keyring built from
//! it), `keyring` (MySQL keyring semantics), `connector` (failover and mutual TLS sessions),
//! `kmip` (TTLV codec and KMIP 1.1 messages) and `config` (the configuration directory). The
//! C boundaries live in their own packages (`plugin/`, `ffi/`).
#![forbid(unsafe_code)]

/// Version, target and profile of this build, for the startup log line and `--version`.
pub const BUILD: &str = env!("KEYRING_OKV_BUILD");

pub mod component;
pub mod config;
pub mod connector;
pub mod health;
pub mod keyring;
pub mod kmip;
pub mod logging;
pub mod mariadb_keys;
pub mod owned_thread;
pub mod plugin;
