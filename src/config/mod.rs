//! STUB (uncommitted) of the agreed config API.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("config error")]
pub struct ConfigError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host { Ip(IpAddr), Dns(String) }
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr { pub host: Host, pub port: u16 }
impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host { Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]:{}", self.port), Host::Ip(a) => write!(f, "{a}:{}", self.port), Host::Dns(d) => write!(f, "{d}:{}", self.port) }
    }
}
impl ServerAddr {
    pub fn server_name(&self) -> rustls_pki_types::ServerName<'static> {
        match &self.host { Host::Ip(a) => rustls_pki_types::ServerName::IpAddress((*a).into()), Host::Dns(d) => rustls_pki_types::ServerName::try_from(d.clone()).unwrap() }
    }
}
#[derive(Clone, Debug)]
pub struct Options { pub connect_timeout: Duration, pub request_timeout: Duration, pub failover_stagger: Duration, pub verify_server_name: bool }
impl Default for Options { fn default() -> Self { Options { connect_timeout: Duration::from_secs(20), request_timeout: Duration::from_secs(20), failover_stagger: Duration::from_millis(250), verify_server_name: true } } }
#[derive(Debug)]
pub struct Warning { pub path: PathBuf, pub message: String }
impl std::fmt::Display for Warning { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.message) } }
#[derive(Debug)]
pub struct ClientIdentityInfo { pub subject: String, pub not_before: SystemTime, pub not_after: SystemTime, pub key_kind: &'static str, pub key_format: &'static str }
#[derive(Debug)]
pub struct ConfDir { pub dir: PathBuf, pub servers: Vec<ServerAddr>, pub options: Options, pub tls: Arc<rustls::ClientConfig>, pub identity: ClientIdentityInfo, pub warnings: Vec<Warning> }
pub fn load_conf_dir(_dir: &Path) -> Result<ConfDir, ConfigError> { Err(ConfigError) }
pub fn check_permissions(_dir: &Path) -> Vec<Warning> { vec![] }
