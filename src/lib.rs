//! The core of keyring_okv: everything the libraries mysqld and mariadbd load share, with no C
//! types and no unsafe code.
//!
//! Layers, from the outside in:
//! - `products`: each product's state and rules, what its C boundary calls: `mysql_plugin`
//!   (keyring_okv.so), `mysql_component` (component_keyring_okv.so) and `mariadb`
//!   (kmip_key_management.so);
//! - `keyring` (MySQL keyring semantics and the rules every product's reads and creates follow),
//!   `connector` (failover and mutual TLS sessions), `kmip` (TTLV codec and KMIP messages) and
//!   `config` (the configuration directory).
//!
//! The C boundaries live in packages of their own under `boundary/` (`plugin`, `component`,
//! `mariadb`, and `ffi` for what they share); all unsafe code is there.
#![forbid(unsafe_code)]

/// Version, target and profile of this build, for the startup log line and `--version`.
pub const BUILD: &str = env!("KEYRING_OKV_BUILD");

pub mod config;
pub mod connector;
pub mod guard;
pub mod health;
pub mod keyring;
pub mod kmip;
pub mod logging;
pub mod owned_thread;
pub mod products;
pub mod sealed;
