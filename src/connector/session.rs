//! One mutual-TLS connection to one KMIP server, with a deadline on every step.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::client::TlsStream;

use super::error::{Stage, TransportError};
use crate::config::ServerAddr;
use crate::kmip;

pub struct Session {
    stream: TlsStream<TcpStream>,
    server: ServerAddr,
    index: usize,
    /// Whether the server has sent anything of an answer on this connection: a close before
    /// that is a refusal (see `TransportError::ClosedAfterHandshake`), a close after it the
    /// ordinary end of a reused connection.
    answered: bool,
}

impl Session {
    pub(crate) fn new(stream: TlsStream<TcpStream>, server: ServerAddr, index: usize) -> Self {
        Session {
            stream,
            server,
            index,
            answered: false,
        }
    }

    pub fn server(&self) -> &ServerAddr {
        &self.server
    }

    /// Position of the server in okvclient.ora: 0 is SERVER, 1.. the STANDBY_SERVERs.
    pub fn index(&self) -> usize {
        self.index
    }

    /// True when the server has closed or broken the connection while it sat idle (servers and
    /// load balancers drop idle TLS sessions). Checked before each request so that requests
    /// that must not be repeated are not sent into a dead connection.
    pub async fn is_stale(&mut self) -> bool {
        let mut byte = [0u8; 1];
        tokio::select! {
            biased;
            // Anything readable while no request is outstanding is EOF, an alert, or garbage.
            _ = self.stream.read(&mut byte) => true,
            _ = std::future::ready(()) => false,
        }
    }

    /// Sends one encoded request and returns the whole response message (header included).
    /// `timeout` bounds the write and the read together.
    pub async fn round_trip(
        &mut self,
        request: &[u8],
        timeout: Duration,
        response_cap: usize,
    ) -> Result<Vec<u8>, TransportError> {
        self.round_trip_until(request, Instant::now() + timeout, timeout, response_cap)
            .await
    }

    /// Like `round_trip`, ending by `deadline` (the request timeout or the end of the caller's
    /// own deadline, whichever comes first); `timeout` is the figure named in the error.
    pub async fn round_trip_until(
        &mut self,
        request: &[u8],
        deadline: Instant,
        timeout: Duration,
        response_cap: usize,
    ) -> Result<Vec<u8>, TransportError> {
        let server = self.server.to_string();
        let step_timeout = |stage| TransportError::Timeout {
            server: server.clone(),
            stage,
            timeout,
        };
        let io_err = |stage, source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::UnexpectedEof {
                TransportError::Closed {
                    server: server.clone(),
                    stage,
                }
            } else {
                TransportError::Io {
                    server: server.clone(),
                    stage,
                    source,
                }
            }
        };

        let answered = self.answered;
        let unanswered_err = |stage, source: std::io::Error| {
            use std::io::ErrorKind as K;
            let closed = matches!(
                source.kind(),
                K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
            );
            if closed && !answered {
                TransportError::ClosedAfterHandshake {
                    server: server.clone(),
                    stage,
                }
            } else {
                io_err(stage, source)
            }
        };

        timeout_at(deadline, async {
            self.stream.write_all(request).await?;
            self.stream.flush().await
        })
        .await
        .map_err(|_| step_timeout(Stage::Write))?
        .map_err(|e| unanswered_err(Stage::Write, e))?;

        let mut header = [0u8; kmip::HEADER_LEN];
        timeout_at(deadline, self.stream.read_exact(&mut header))
            .await
            .map_err(|_| step_timeout(Stage::Read))?
            .map_err(|e| unanswered_err(Stage::Read, e))?;
        self.answered = true;
        let body_len = kmip::response_len(&header, response_cap).map_err(|source| {
            TransportError::Garbage {
                server: server.clone(),
                source,
            }
        })?;
        let mut message = Vec::with_capacity(kmip::HEADER_LEN + body_len);
        message.extend_from_slice(&header);
        message.resize(kmip::HEADER_LEN + body_len, 0);
        timeout_at(
            deadline,
            self.stream.read_exact(&mut message[kmip::HEADER_LEN..]),
        )
        .await
        .map_err(|_| step_timeout(Stage::Read))?
        .map_err(|e| io_err(Stage::Read, e))?;
        Ok(message)
    }
}
