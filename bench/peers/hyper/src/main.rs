//! W8 on hyper: HTTP/1.1 "hello\n" on 127.0.0.1:PORT, one thread
//! (tokio's current-thread runtime), a task per connection, as quench.http
//! and nginx + Lua serve it in bench/http.sh. Stopped by SIGTERM.
//!   bench-hyper-w8 PORT

use std::convert::Infallible;

use hyper::server::conn::Http;
use hyper::service::service_fn;
use hyper::{Body, Request, Response};
use tokio::net::TcpListener;

async fn hello(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::from("hello\n")))
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: bench-hyper-w8 PORT");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("ready");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(c) => c,
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            tokio::task::spawn(async move {
                let _ = Http::new()
                    .http1_only(true)
                    .http1_keep_alive(true)
                    .serve_connection(stream, service_fn(hello))
                    .await;
            });
        }
    });
}
