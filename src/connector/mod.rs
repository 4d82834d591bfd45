//! Reaching the KMIP servers: failover across SERVER and STANDBY_SERVERs, mutual-TLS sessions
//! with a deadline on every step, and the shared client the keyring layer calls.

mod client;
mod error;
mod failover;
mod lookup;
pub mod runtime;
mod session;

pub use client::{BatchAnswer, Connected, KmipClient, RESPONSE_CAP, Retry, with_deadline};
pub use error::{ClientError, Stage, TransportError};
pub use failover::{
    connect_any, connect_avoiding, connect_until, effective_stagger, last_start, overall_deadline,
    waves,
};
pub use session::Session;
