//! Each product's layer over the shared core: its state (the configuration in force, caches,
//! counters) and the rules its server expects, in safe code. The C boundary of each product
//! (under `boundary/`) converts arguments and calls these; nothing here knows a C type.
//!
//! - [`mysql_plugin`]: the keyring plugin keyring_okv.so (boundary/plugin);
//! - [`mysql_component`]: the keyring component component_keyring_okv.so (boundary/component);
//! - [`mariadb`]: the encryption plugin kmip_key_management.so (boundary/mariadb);
//! - [`mysqld_start`]: the end of a mysqld start as the plugin and the component see it.

pub mod mariadb;
pub mod mysql_component;
pub mod mysql_plugin;
pub mod mysqld_start;
