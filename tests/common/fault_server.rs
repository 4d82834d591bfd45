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
    /// No answer: the connection is closed (a TCP FIN without a TLS close_notify), as a KMS or
    /// TLS proxy does that refuses the client certificate once a TLS 1.3 handshake is done.
    CloseUnanswered,
    /// No answer: the connection is reset (a TCP RST).
    ResetUnanswered,
}

/// The operation whose requests a `Fault::KmipRefusing` server refuses, and the Result Reason
/// it refuses them with; None: it answers everything.
pub type Refusal = Arc<Mutex<Option<(u32, u32)>>>;

/// A TLS proxy in front of a real KMIP server that swallows the answers to the first
/// `times` requests of one operation: the server carries the request out, the client sees the
/// connection close instead of the answer.
#[derive(Clone)]
pub struct Swallow {
    pub upstream: SocketAddr,
    pub upstream_tls: Arc<rustls::ClientConfig>,
    pub operation: u32,
    pub times: Arc<std::sync::atomic::AtomicUsize>,
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
    /// Forwards to a real server, swallowing some answers.
    Proxy {
        tls: Arc<ServerConfig>,
        swallow: Swallow,
    },
    /// A KMIP server of its own with switchable quirks (see `kmip_quirks`).
    Kmip {
        tls: Arc<ServerConfig>,
        server: Arc<super::kmip_quirks::QuirkyKmip>,
    },
    /// As `Kmip`, answering every message whose first operation is the one in `refuse` with
    /// an Operation Failed of its reason instead (a General Failure during a KMS fail-over,
    /// Permission Denied during a policy change), without passing it on.
    KmipRefusing {
        tls: Arc<ServerConfig>,
        server: Arc<super::kmip_quirks::QuirkyKmip>,
        refuse: Refusal,
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
            Fault::Proxy { tls, swallow } => {
                let (tls, swallow) = (tls.clone(), swallow.clone());
                std::thread::spawn(move || proxy(conn, tls, swallow));
            }
            Fault::Kmip { tls, server } => {
                let (tls, server) = (tls.clone(), server.clone());
                std::thread::spawn(move || serve_kmip(conn, tls, server, None));
            }
            Fault::KmipRefusing {
                tls,
                server,
                refuse,
            } => {
                let (tls, server, refuse) = (tls.clone(), server.clone(), refuse.clone());
                std::thread::spawn(move || serve_kmip(conn, tls, server, Some(refuse)));
            }
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
    let conn = match reply {
        Reply::ResetUnanswered => zero_linger(conn),
        _ => conn,
    };
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
        // SO_LINGER 0 (set at accept) makes the close a reset.
        Reply::CloseUnanswered | Reply::ResetUnanswered => drop(stream),
    }
}

/// The connection with SO_LINGER set to 0, so that closing it sends a reset. The standard
/// library cannot set it; tokio's socket can, for a moment, under a runtime of its own.
fn zero_linger(conn: TcpStream) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime");
    let _entered = runtime.enter();
    conn.set_nonblocking(true).unwrap();
    let socket = tokio::net::TcpStream::from_std(conn).unwrap();
    socket.set_zero_linger().unwrap();
    let conn = socket.into_std().unwrap();
    conn.set_nonblocking(false).unwrap();
    conn
}

/// The error answer to `request` when its first operation is the refused one: every batch
/// item fails with the refusal's reason.
fn refusal_of(request: &[u8], refuse: &Refusal) -> Option<Vec<u8>> {
    use okv_core::kmip::tags::{self, result_status};
    use okv_core::kmip::{Ttlv, ttlv};
    let (operation, reason) = (*refuse.lock().unwrap())?;
    if operation_of(request) != Some(operation) {
        return None;
    }
    let message = ttlv::decode(request).ok()?;
    let mut items = Vec::new();
    for item in message.find_all(tags::BATCH_ITEM) {
        let op = item
            .find(tags::OPERATION)
            .and_then(Ttlv::as_enum)
            .unwrap_or(0);
        let mut out = vec![Ttlv::enumeration(tags::OPERATION, op)];
        if let Some(id) = item.find(tags::UNIQUE_BATCH_ITEM_ID) {
            out.push(id.clone());
        }
        out.push(Ttlv::enumeration(
            tags::RESULT_STATUS,
            result_status::OPERATION_FAILED,
        ));
        out.push(Ttlv::enumeration(tags::RESULT_REASON, reason));
        out.push(Ttlv::text(tags::RESULT_MESSAGE, "refused by the test"));
        items.push(Ttlv::structure(tags::BATCH_ITEM, out));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut children = vec![Ttlv::structure(
        tags::RESPONSE_HEADER,
        vec![
            Ttlv::structure(
                tags::PROTOCOL_VERSION,
                vec![
                    Ttlv::integer(tags::PROTOCOL_VERSION_MAJOR, 1),
                    Ttlv::integer(tags::PROTOCOL_VERSION_MINOR, 1),
                ],
            ),
            Ttlv::date_time(tags::TIME_STAMP, i64::try_from(now).unwrap()),
            Ttlv::integer(tags::BATCH_COUNT, i32::try_from(items.len()).unwrap()),
        ],
    )];
    children.extend(items);
    Some(Ttlv::structure(tags::RESPONSE_MESSAGE, children).encode())
}

/// A `Fault::KmipRefusing` server with the test PKI's server identity (a configuration
/// directory of `fixtures::pki().layout()` talks to it), refusing nothing until told to.
pub fn serve_refusing(
    uid_prefix: &str,
) -> (Arc<super::kmip_quirks::QuirkyKmip>, FaultServer, Refusal) {
    let pki = super::fixtures::pki();
    let kmip = Arc::new(super::kmip_quirks::QuirkyKmip::new(uid_prefix));
    let refuse: Refusal = Arc::new(Mutex::new(None));
    let fault = FaultServer::start(Fault::KmipRefusing {
        tls: super::fixtures::rustls_server_config(&pki.server_cert, &pki.server_key, &pki.ca_cert),
        server: kmip.clone(),
        refuse: refuse.clone(),
    });
    (kmip, fault, refuse)
}

/// Holds the connection open, doing nothing, until the test drops the server.
fn wait_for_stop(stopped: &AtomicBool, at_most: Duration) {
    let deadline = std::time::Instant::now() + at_most;
    while !stopped.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

/// Reads one TTLV message (8-byte header, then the body it announces).
fn read_message(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut message = vec![0u8; 8];
    stream.read_exact(&mut message).ok()?;
    let len = u32::from_be_bytes([message[4], message[5], message[6], message[7]]) as usize;
    if len > 1 << 20 {
        return None;
    }
    message.resize(8 + len, 0);
    stream.read_exact(&mut message[8..]).ok()?;
    Some(message)
}

/// The Operation of a request: the enumeration that follows tag 0x42005C.
fn operation_of(request: &[u8]) -> Option<u32> {
    request
        .windows(12)
        .find(|w| w[..8] == [0x42, 0x00, 0x5C, 0x05, 0, 0, 0, 4])
        .map(|w| u32::from_be_bytes([w[8], w[9], w[10], w[11]]))
}

fn proxy(conn: TcpStream, tls: Arc<ServerConfig>, swallow: Swallow) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(server) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut client_side = rustls::StreamOwned::new(server, conn);
    let Ok(upstream) = TcpStream::connect(swallow.upstream) else {
        return;
    };
    let name = rustls_pki_types::ServerName::IpAddress(swallow.upstream.ip().into());
    let Ok(session) = rustls::ClientConnection::new(swallow.upstream_tls.clone(), name) else {
        return;
    };
    let mut server_side = rustls::StreamOwned::new(session, upstream);
    while let Some(request) = read_message(&mut client_side) {
        if server_side.write_all(&request).is_err() {
            return;
        }
        let Some(response) = read_message(&mut server_side) else {
            return;
        };
        let swallowed = operation_of(&request) == Some(swallow.operation)
            && swallow
                .times
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if swallowed {
            // The server did the work; the client never hears of it.
            let _ = client_side.get_ref().shutdown(std::net::Shutdown::Both);
            return;
        }
        if client_side
            .write_all(&response)
            .and_then(|()| client_side.flush())
            .is_err()
        {
            return;
        }
    }
}

/// A plain TCP forwarder in front of a real server (TLS passes through untouched) that a test
/// can cut, closing every open connection and closing new ones at once, and restore: the same
/// server, with its objects, reachable at a second address.
pub struct CutProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    /// Black-holed: new connections are accepted and never answered (a firewall that drops, a
    /// hung appliance), held here until `restore`.
    hole: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    live: Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl CutProxy {
    pub fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let hole = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let live = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (c, s, o, l) = (cut.clone(), stop.clone(), open.clone(), live.clone());
        let (h, hd) = (hole.clone(), held.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(conn);
                    continue;
                }
                if h.load(Ordering::SeqCst) {
                    hd.lock().unwrap().push(conn);
                    continue;
                }
                let Ok(up) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (Ok(conn2), Ok(up2)) = (conn.try_clone(), up.try_clone()) else {
                    continue;
                };
                {
                    let mut open = o.lock().unwrap();
                    open.extend(conn.try_clone());
                    open.extend(up.try_clone());
                }
                l.fetch_add(1, Ordering::SeqCst);
                let l = l.clone();
                // The connection counts as open until its client closes its side.
                std::thread::spawn(move || {
                    pipe(conn, up2);
                    l.fetch_sub(1, Ordering::SeqCst);
                });
                std::thread::spawn(move || pipe(up, conn2));
            }
        });
        CutProxy {
            addr,
            cut,
            hole,
            held,
            stop,
            open,
            live,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Forwarded connections whose client has not closed them.
    pub fn open_connections(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Closes every forwarded connection; new ones are closed as soon as they are accepted.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Closes every forwarded connection; new ones are accepted and never answered.
    pub fn black_hole(&self) {
        self.hole.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.hole.store(false, Ordering::SeqCst);
        for s in self.held.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(std::net::Shutdown::Write);
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.cut();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_kmip(
    conn: TcpStream,
    tls: Arc<ServerConfig>,
    server: Arc<super::kmip_quirks::QuirkyKmip>,
    refuse: Option<Refusal>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(session) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(session, conn);
    while let Some(request) = read_message(&mut stream) {
        let refused = refuse.as_ref().and_then(|r| refusal_of(&request, r));
        let response = refused.unwrap_or_else(|| server.handle(&request));
        if response.is_empty()
            || stream
                .write_all(&response)
                .and_then(|()| stream.flush())
                .is_err()
        {
            let _ = stream.get_ref().shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}
