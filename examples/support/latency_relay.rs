//! A TCP relay on 127.0.0.1 that adds a fixed one-way delay, to measure a client as if its
//! server were across a network: each chunk read from one side is written to the other
//! `one_way` after it arrived (so a request and its answer pay one round-trip time), in order
//! and without holding back the chunks behind it. Bytes pass through untouched (TLS included).
//! At most `QUEUE` chunks wait per direction; the reader stops reading when they do, as a
//! real link's buffers would. Dropping the relay closes its listener and every connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const QUEUE: usize = 256;
const CHUNK: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct LatencyRelay {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl LatencyRelay {
    /// Listens on 127.0.0.1 (port 0) and forwards every connection to `upstream`, delaying
    /// each direction by `rtt / 2`.
    pub fn start(upstream: SocketAddr, rtt: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let one_way = rtt / 2;
        let stopping = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let acceptor = {
            let (stopping, streams, threads) = (stopping.clone(), streams.clone(), threads.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT) else {
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let mut spawned = Vec::new();
                    {
                        let mut all = streams.lock().unwrap();
                        for (from, to) in [(&client, &server), (&server, &client)] {
                            let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                                continue;
                            };
                            all.push(from.try_clone().expect("clone"));
                            spawned.extend(pipe(from, to, one_way));
                        }
                    }
                    threads.lock().unwrap().extend(spawned);
                }
            })
        };
        Ok(LatencyRelay {
            addr,
            stopping,
            streams,
            threads,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// One direction: a reader that stamps each chunk with when it is due, a writer that sends it
/// then. End of stream (or an error) on either side ends both and half-closes the other side.
fn pipe(mut from: TcpStream, to: TcpStream, one_way: Duration) -> [JoinHandle<()>; 2] {
    let (tx, rx) = sync_channel::<(Instant, Vec<u8>)>(QUEUE);
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + one_way, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Read);
    });
    let writer = std::thread::spawn(move || write_when_due(rx, to));
    [reader, writer]
}

fn write_when_due(rx: Receiver<(Instant, Vec<u8>)>, mut to: TcpStream) {
    for (due, chunk) in rx {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if to.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for LatencyRelay {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the acceptor, which then sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for stream in self.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}
