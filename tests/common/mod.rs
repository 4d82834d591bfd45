//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod component;
pub mod cpu_load;
pub mod fault_server;
pub mod fixtures;
pub mod host;
pub mod kmip_quirks;
pub mod libs;
pub mod mariadb;
pub mod mysql;
pub mod products;
pub mod pykmip;
pub mod service;
pub mod tcp_proxy;
pub mod vectors;
