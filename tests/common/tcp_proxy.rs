//! A TCP relay on 127.0.0.1 (port 0) in front of a real KMIP server that can be told to hang:
//! while hung it accepts connections and keeps them open but passes no byte either way, which
//! a real server does not do on demand. It can also be told to refuse: its port is closed
//! (connection refused, as for a server that is down) and its open connections are cut, until
//! it listens again on the same port.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

pub struct TcpProxy {
    pub addr: SocketAddr,
    hang: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    upstream: Arc<Mutex<SocketAddr>>,
    held: Arc<AtomicUsize>,
    /// The listening socket; None while refusing.
    listener: Arc<Mutex<Option<TcpListener>>>,
    /// While refusing: a socket bound to the port that does not listen, so that a connect is
    /// refused and no other socket can take the port meanwhile.
    reserved: Mutex<Option<Socket>>,
    /// Bumped when refusing begins: relays of an older generation end.
    generation: Arc<AtomicU64>,
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    hang: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    held: Arc<AtomicUsize>,
    generation: (Arc<AtomicU64>, u64),
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = [0u8; 16 * 1024];
    // Bytes that arrive while hung are counted once per hang (without taking them), so that a
    // test can wait for a request sent by a background thread at a moment it does not choose.
    let mut counted = false;
    while !stop.load(Ordering::Relaxed) && generation.0.load(Ordering::SeqCst) == generation.1 {
        if hang.load(Ordering::Relaxed) {
            if !counted && matches!(from.peek(&mut buf[..1]), Ok(n) if n > 0) {
                held.fetch_add(1, Ordering::SeqCst);
                counted = true;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        counted = false;
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes that arrive once the hang began are held too (the read may have been
                // under way when it began), so that no request sent after `set_hang` passes.
                if hang.load(Ordering::Relaxed) {
                    held.fetch_add(1, Ordering::SeqCst);
                }
                while hang.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl TcpProxy {
    pub fn start(upstream: SocketAddr) -> TcpProxy {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).expect("bind 127.0.0.1:0")
    }

    /// A relay listening on `listen` (port 0: any free port), e.g. again on the port of one
    /// that was dropped, so that clients configured with that port find it.
    pub fn start_on(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::from(listening(bound(listen)?)?);
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let proxy = TcpProxy {
            addr,
            hang: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            upstream: Arc::new(Mutex::new(upstream)),
            held: Arc::new(AtomicUsize::new(0)),
            listener: Arc::new(Mutex::new(Some(listener))),
            reserved: Mutex::new(None),
            generation: Arc::new(AtomicU64::new(0)),
        };
        let (hang, stop, up, held_reads, listener, generation) = (
            proxy.hang.clone(),
            proxy.stop.clone(),
            proxy.upstream.clone(),
            proxy.held.clone(),
            proxy.listener.clone(),
            proxy.generation.clone(),
        );
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let accepted = match listener.lock().unwrap().as_ref() {
                    Some(l) => l.accept(),
                    None => Err(std::io::ErrorKind::NotConnected.into()),
                };
                match accepted {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if hang.load(Ordering::Relaxed) {
                            // Accepted, never answered: a client waits here too.
                            held_reads.fetch_add(1, Ordering::SeqCst);
                            held.push(client);
                            continue;
                        }
                        let target = *up.lock().unwrap();
                        let Ok(server) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(2))
                        else {
                            continue;
                        };
                        let now = (generation.clone(), generation.load(Ordering::SeqCst));
                        let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let (h1, s1, held1, g1) =
                            (hang.clone(), stop.clone(), held_reads.clone(), now.clone());
                        let (h2, st2, held2, g2) =
                            (hang.clone(), stop.clone(), held_reads.clone(), now);
                        std::thread::spawn(move || pump(client, server, h1, s1, held1, g1));
                        std::thread::spawn(move || pump(s2, c2, h2, st2, held2, g2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(proxy)
    }

    /// Refusing: the port is closed at once (a connect is refused, as when the KMIP server is
    /// down) and the relayed connections are cut. Off: it listens again on the same port.
    pub fn set_refuse(&self, on: bool) {
        let mut listener = self.listener.lock().unwrap();
        let mut reserved = self.reserved.lock().unwrap();
        if on {
            self.generation.fetch_add(1, Ordering::SeqCst);
            if listener.is_some() {
                // Bound before the listener closes: the port is never free in between (a
                // connect elsewhere on the machine could be given it as its source port).
                *reserved = Some(
                    bound(self.addr)
                        .unwrap_or_else(|e| panic!("keep {} while refusing: {e}", self.addr)),
                );
                *listener = None;
            }
        } else if let Some(socket) = reserved.take() {
            let l = TcpListener::from(
                listening(socket).unwrap_or_else(|e| panic!("listen again on {}: {e}", self.addr)),
            );
            l.set_nonblocking(true).unwrap();
            *listener = Some(l);
        }
    }

    pub fn set_hang(&self, on: bool) {
        self.hang.store(on, Ordering::Relaxed);
    }

    /// Reads held back by the hang so far: a request (or an answer) that is stuck here, or a
    /// connection accepted while hung.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self.upstream.lock().unwrap() = upstream;
    }
}

/// A TCP socket bound to `addr` that shares its port with the relay's other sockets only
/// (SO_REUSEPORT, same user), not yet listening.
fn bound(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn listening(socket: Socket) -> std::io::Result<Socket> {
    socket.listen(128)?;
    Ok(socket)
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
