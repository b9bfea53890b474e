//! bench/tls.lua's workloads for tokio 1.24 with tokio-openssl 0.6 (Debian's
//! crates), on the OpenSSL 3 quench links, so both run the same cipher suite.
//! Usage: bench-tokio-tls <ct|mt> <W6|W6TLS|BULK|BULKTLS|BULKP|BULKTLSP|all>
//!   BULKP, BULKTLSP: the writer is this program again in another process
//!   (`bench-tokio-tls <ct|mt> bulk-writer <tcp|tls> PORT`), timed by the
//!   reader from accept to the end of the stream, as bench/tls.lua does
//!   ct = current-thread runtime (one thread, as one Lua state); mt = 2 workers
//! Settings (environment, as bench/tls.lua): W6_CLIENTS, W6_ROUNDS, W6_SIZE,
//! BULK_MB, BULK_READ; TLS_CA, TLS_CERT, TLS_KEY (PEM files: the CA the client
//! verifies with, the server's certificate for localhost and its key).
//! Prints bench/tls.lua's line:
//!   peer=tokio-ct workload=W6TLS value=N unit=roundtrips/s check=ok elapsed_s=S
//!
//! Both ends run in this one process, as in bench/tls.lua: the client verifies
//! the chain and the host name "localhost"; writes are `write_all`, reads of
//! W6 are `read_exact` (the client) and `read` into a 4 KiB buffer (the
//! echo server), bulk reads are `read` into a BULK_READ buffer.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use openssl::ssl::{Ssl, SslAcceptor, SslConnector, SslFiletype, SslMethod};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_openssl::SslStream;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

fn setting(key: &str, default: u64) -> u64 {
    std::env::var(key).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn path(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{} is not set (see bench/tls.sh)", key))
}

/// The two ends of a connection, over plain TCP or TLS.
#[derive(Clone)]
struct Transport {
    tls: Option<(Arc<SslAcceptor>, Arc<SslConnector>)>,
}

impl Transport {
    fn new(secure: bool) -> Transport {
        if !secure {
            return Transport { tls: None };
        }
        let mut a = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        a.set_certificate_chain_file(path("TLS_CERT")).unwrap();
        a.set_private_key_file(path("TLS_KEY"), SslFiletype::PEM).unwrap();
        let mut c = SslConnector::builder(SslMethod::tls()).unwrap();
        c.set_ca_file(path("TLS_CA")).unwrap();   // read once, shared by all clients
        Transport { tls: Some((Arc::new(a.build()), Arc::new(c.build()))) }
    }

    async fn accept(&self, listener: &TcpListener) -> Stream {
        let (s, _) = listener.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        match &self.tls {
            None => Box::new(s),
            Some((a, _)) => {
                let mut t = SslStream::new(Ssl::new(a.context()).unwrap(), s).unwrap();
                Pin::new(&mut t).accept().await.unwrap();
                Box::new(t)
            }
        }
    }

    async fn connect(&self, port: u16) -> Stream {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.set_nodelay(true).unwrap();
        match &self.tls {
            None => Box::new(s),
            Some((_, c)) => {
                let ssl = c.configure().unwrap().into_ssl("localhost").unwrap();
                let mut t = SslStream::new(ssl, s).unwrap();
                Pin::new(&mut t).connect().await.unwrap();
                Box::new(t)
            }
        }
    }
}

fn report(peer: &str, w: &str, value: f64, unit: &str, ok: bool, extra: &str) -> bool {
    println!("peer={} workload={} value={:.0} unit={} check={}{}",
             peer, w, value, unit, if ok { "ok" } else { "FAIL" }, extra);
    ok
}

async fn w6(t: Transport) -> (f64, bool, f64) {
    let (c, r, sz) = (setting("W6_CLIENTS", 100), setting("W6_ROUNDS", 1000),
                      setting("W6_SIZE", 64) as usize);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ts = t.clone();
    let acceptor = tokio::spawn(async move {
        for _ in 0..c {
            let mut s = ts.accept(&listener).await;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 { break; }
                    if s.write_all(&buf[..n]).await.is_err() { break; }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    let all = Arc::new(AtomicBool::new(true));
    let t0 = Instant::now();
    let mut hs = Vec::new();
    for _ in 0..c {
        let (t, all) = (t.clone(), all.clone());
        hs.push(tokio::spawn(async move {
            let msg = vec![b'x'; sz];
            let mut got = vec![0u8; sz];
            let mut s = t.connect(port).await;
            for _ in 0..r {
                s.write_all(&msg).await.unwrap();
                if s.read_exact(&mut got).await.is_err() || got != msg { all.store(false, Relaxed); }
            }
            let _ = s.shutdown().await;
        }));
    }
    for h in hs { h.await.unwrap(); }
    let e = t0.elapsed().as_secs_f64();
    acceptor.await.unwrap();
    ((c * r) as f64 / e, all.load(Relaxed), e)
}

async fn bulk(t: Transport) -> (f64, bool, f64) {
    let total = setting("BULK_MB", 256) * 1024 * 1024;
    let read_size = setting("BULK_READ", 65536) as usize;
    let chunk = b"0123456789abcdef".repeat(CHUNK / 16);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let ts = t.clone();
    let reader = tokio::spawn(async move {
        let mut s = ts.accept(&listener).await;
        let mut buf = vec![0u8; read_size];
        let mut n = 0u64;
        loop {
            let k = s.read(&mut buf).await.unwrap_or(0);
            if k == 0 { break; }
            n += k as u64;
        }
        n
    });
    let mut c = t.connect(port).await;
    let t0 = Instant::now();
    for _ in 0..total / chunk.len() as u64 { c.write_all(&chunk).await.unwrap(); }
    c.shutdown().await.unwrap();
    let n = reader.await.unwrap();
    let e = t0.elapsed().as_secs_f64();
    (total as f64 / e / 1e6, n == total, e)
}

const CHUNK: usize = 256 * 1024;

async fn bulk_writer(t: Transport, port: u16) {
    let total = setting("BULK_MB", 256) * 1024 * 1024;
    let chunk = b"0123456789abcdef".repeat(CHUNK / 16);
    let mut c = t.connect(port).await;
    for _ in 0..total / CHUNK as u64 { c.write_all(&chunk).await.unwrap(); }
    c.shutdown().await.unwrap();
    // Wait for the reader to close: exiting with its session tickets unread
    // would reset the connection and lose data still in flight.
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest).await;
}

async fn bulk_process(t: Transport, flavor: String, secure: bool) -> (f64, bool, f64) {
    let total = setting("BULK_MB", 256) * 1024 * 1024;
    let read_size = setting("BULK_READ", 65536) as usize;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([flavor.as_str(), "bulk-writer", if secure { "tls" } else { "tcp" }, &port.to_string()])
        .spawn().unwrap();
    let mut s = t.accept(&listener).await;
    let t0 = Instant::now();
    let mut buf = vec![0u8; read_size];
    let mut n = 0u64;
    loop {
        let k = s.read(&mut buf).await.unwrap_or(0);
        if k == 0 { break; }
        n += k as u64;
    }
    let e = t0.elapsed().as_secs_f64();
    drop(s);
    let ok = child.wait().map(|st| st.success()).unwrap_or(false);
    (total as f64 / e / 1e6, ok && n == total, e)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flavor = args.get(1).map(String::as_str).unwrap_or("ct");
    let which = args.get(2).map(|s| s.to_uppercase()).unwrap_or_else(|| "ALL".into());
    let rt = match flavor {
        "ct" => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        "mt" => tokio::runtime::Builder::new_multi_thread().worker_threads(2)
            .enable_all().build().unwrap(),
        _ => {
            eprintln!("usage: bench-tokio-tls ct|mt all|W6|W6TLS|BULK|BULKTLS");
            std::process::exit(2);
        }
    };
    let peer = format!("tokio-{}", flavor);
    if which == "BULK-WRITER" {
        let secure = args.get(3).map(String::as_str) == Some("tls");
        let port: u16 = args.get(4).and_then(|p| p.parse().ok()).expect("bulk-writer: port");
        let t = Transport::new(secure);
        rt.block_on(async move { tokio::spawn(bulk_writer(t, port)).await.unwrap() });
        return;
    }
    let list: Vec<&str> = match which.as_str() {
        "ALL" => vec!["W6", "W6TLS", "BULK", "BULKTLS", "BULKP", "BULKTLSP"],
        "W6" => vec!["W6"], "W6TLS" => vec!["W6TLS"], "BULK" => vec!["BULK"],
        "BULKTLS" => vec!["BULKTLS"], "BULKP" => vec!["BULKP"], "BULKTLSP" => vec!["BULKTLSP"],
        _ => {
            eprintln!("usage: bench-tokio-tls ct|mt all|W6|W6TLS|BULK|BULKTLS|BULKP|BULKTLSP");
            std::process::exit(2);
        }
    };
    let mut ok = true;
    for w in list {
        let secure = w.contains("TLS");
        let t = Transport::new(secure);
        // the driver is itself a task, as in the Lua peers
        ok = if w.starts_with("W6") {
            let (v, good, e) = rt.block_on(async move { tokio::spawn(w6(t)).await.unwrap() });
            report(&peer, w, v, "roundtrips/s", good, &format!(" elapsed_s={:.3}", e))
        } else if w.ends_with('P') {
            let (f, secure) = (flavor.to_string(), w == "BULKTLSP");
            let (v, good, e) = rt.block_on(async move {
                tokio::spawn(bulk_process(t, f, secure)).await.unwrap()
            });
            report(&peer, w, v, "MB/s", good,
                   &format!(" elapsed_s={:.3} read_size={}", e, setting("BULK_READ", 65536)))
        } else {
            let (v, good, e) = rt.block_on(async move { tokio::spawn(bulk(t)).await.unwrap() });
            report(&peer, w, v, "MB/s", good,
                   &format!(" elapsed_s={:.3} read_size={}", e, setting("BULK_READ", 65536)))
        } && ok;
    }
    std::process::exit(if ok { 0 } else { 1 });
}
