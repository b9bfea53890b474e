//! W7s for tokio: bytes per idle task blocked in `tokio::time::sleep(3600 s)`.
//! Usage: bench-tokio-w7s <ct|mt> W7s [KEY=VALUE ...]   (W7S_N, W7S_SLEEP_S; env or argv)
//! Value = (RSS once all N tasks sleep - RSS before the first spawn) / N.
//! JoinHandles are not retained (dropping one detaches its task), as in W7.
//! Prints the bench-peers line: peer=tokio-ct workload=W7s value=N unit=bytes/task check=ok

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().unwrap();
            return kb * 1024;
        }
    }
    0
}

fn setting(args: &[String], key: &str, default: u64) -> u64 {
    let mut v = std::env::var(key).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    for a in args {
        if let Some((k, x)) = a.split_once('=') {
            if k.eq_ignore_ascii_case(key) {
                if let Ok(x) = x.parse() {
                    v = x;
                }
            }
        }
    }
    v
}

async fn w7s(n: usize, secs: u64) -> (f64, usize) {
    let started = Arc::new(AtomicUsize::new(0));
    let rss0 = rss_bytes();
    for _ in 0..n {
        let started = started.clone();
        tokio::spawn(async move {
            started.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_secs(secs)).await;
        });
    }
    while started.load(Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rss1 = rss_bytes();
    ((rss1 as f64 - rss0 as f64) / n as f64, started.load(Relaxed))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: bench-tokio-w7s <ct|mt> W7s [W7S_N=..] [W7S_SLEEP_S=..]");
        std::process::exit(2);
    }
    let (peer, rt) = match args[0].as_str() {
        "ct" => ("tokio-ct", tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()),
        "mt" => (
            "tokio-mt",
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap(),
        ),
        _ => {
            eprintln!("flavor must be ct or mt");
            std::process::exit(2);
        }
    };
    if !args[1].eq_ignore_ascii_case("W7s") {
        println!("peer={} workload={} value=NA unit=- check=unsupported reason=unknown_workload", peer, args[1]);
        std::process::exit(3);
    }
    let n = setting(&args[2..], "W7S_N", 100_000) as usize;
    let secs = setting(&args[2..], "W7S_SLEEP_S", 3600);
    // the driver runs inside a task, as in every peer
    let (per, started) = rt.block_on(async move { tokio::spawn(w7s(n, secs)).await.unwrap() });
    let ok = started == n;
    println!(
        "peer={} workload=W7s value={:.0} unit=bytes/task check={} blocked={}",
        peer,
        per,
        if ok { "ok" } else { "FAIL" },
        started
    );
    rt.shutdown_background(); // do not wait for the sleepers
    std::process::exit(if ok { 0 } else { 1 });
}
