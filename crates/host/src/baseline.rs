//! The benchmark's native baseline: a plain hyper handler that answers
//! `GET /servers/{id}` with the same key-value read the servers component
//! does, without wasm. `scripts/bench.sh` loads both and prints the ratio.

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use vnext_kv::Store;

pub async fn serve(listen: SocketAddr, db: &Path, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    anyhow::ensure!(db.exists(), "key-value file {} does not exist (run the host once first)", db.display());
    let backend = Arc::new(vnext_kv::sqlite::SqliteBackend::open(db)?);
    let store: Arc<dyn Store> = Arc::new(backend.store("default"));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("Serving http://{}", listener.local_addr()?);
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            a = listener.accept() => a?,
            _ = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let store = store.clone();
                async move { Ok::<_, Infallible>(answer(&*store, req.uri().path()).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

async fn answer(store: &dyn Store, path: &str) -> http::Response<Full<Bytes>> {
    let reply = |status: u16, body: Vec<u8>| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("valid response")
    };
    let Some(id) = path.strip_prefix("/servers/") else { return reply(404, b"{}".to_vec()) };
    match store.get(&vnext_core::keys::server(id)).await {
        Ok(Some(v)) => reply(200, v),
        Ok(None) => reply(404, b"{}".to_vec()),
        Err(e) => reply(500, e.to_string().into_bytes()),
    }
}
