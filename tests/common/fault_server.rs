//! In-process misbehaving servers on 127.0.0.1 (port 0), for the faults a real KMIP server
//! will not produce on demand: silence, resets, garbage, oversized frames, slow answers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::ServerConfig;

/// What the server does after the TLS handshake and one request.
#[derive(Clone)]
pub enum Reply {
    /// Bytes that are not TTLV.
    Garbage(Vec<u8>),
    /// A ResponseMessage header announcing 2 GiB.
    OversizedLength,
    /// A header announcing 64 bytes, 10 of them, then the connection closes.
    HalfThenClose,
    /// Nothing until the test ends.
    Never,
}

#[derive(Clone)]
pub enum Fault {
    /// Accepts TCP and never says a word (no TLS handshake).
    Silent,
    /// Accepts TCP and closes the connection at once.
    Reset,
    /// Completes the TLS handshake with this identity, reads one request, then replies.
    AfterHandshake {
        tls: Arc<ServerConfig>,
        reply: Reply,
    },
}

pub struct FaultServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<usize>>,
    thread: Option<JoinHandle<()>>,
}

impl FaultServer {
    pub fn start(fault: Fault) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(0));
        let (count, stopped) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || serve(listener, fault, stopped, count));
        FaultServer {
            addr,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: TcpListener, fault: Fault, stopped: Arc<AtomicBool>, count: Arc<Mutex<usize>>) {
    let mut held: Vec<TcpStream> = Vec::new();
    for conn in listener.incoming() {
        if stopped.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else { continue };
        *count.lock().unwrap() += 1;
        match &fault {
            Fault::Silent => held.push(conn),
            Fault::Reset => drop(conn),
            Fault::AfterHandshake { tls, reply } => {
                let (tls, reply, stopped) = (tls.clone(), reply.clone(), stopped.clone());
                // Detached: it ends by itself once the test has dropped the server.
                std::thread::spawn(move || answer(conn, tls, reply, stopped));
            }
        }
    }
    drop(held);
}

fn answer(conn: TcpStream, tls: Arc<ServerConfig>, reply: Reply, stopped: Arc<AtomicBool>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(server) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(server, conn);
    let mut header = [0u8; 8];
    if stream.read_exact(&mut header).is_err() {
        return;
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let mut body = vec![0u8; len.min(1 << 20)];
    if stream.read_exact(&mut body).is_err() {
        return;
    }
    match reply {
        Reply::Garbage(bytes) => {
            let _ = stream.write_all(&bytes);
            let _ = stream.flush();
            wait_for_stop(&stopped, Duration::from_secs(10));
        }
        Reply::OversizedLength => {
            let _ = stream.write_all(&[0x42, 0x00, 0x7B, 0x01, 0x7F, 0xFF, 0xFF, 0xF8]);
            let _ = stream.flush();
            wait_for_stop(&stopped, Duration::from_secs(10));
        }
        Reply::HalfThenClose => {
            let mut half = vec![0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x00, 0x40];
            half.extend_from_slice(&[0x42, 0x00, 0x7A, 0x01, 0x00, 0x00, 0x00, 0x38, 0x42, 0x00]);
            let _ = stream.write_all(&half);
            let _ = stream.flush();
            let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
        }
        Reply::Never => wait_for_stop(&stopped, Duration::from_secs(30)),
    }
}

/// Holds the connection open, doing nothing, until the test drops the server.
fn wait_for_stop(stopped: &AtomicBool, at_most: Duration) {
    let deadline = std::time::Instant::now() + at_most;
    while !stopped.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(50));
    }
}
