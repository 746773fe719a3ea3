mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::net::SocketAddr;
use vnext_core::events::{EVENTS_SECRET_HEADER, OperationState};
use vnext_core::hypervisor::adapter_api;
use vnext_core::hypervisor::{ComputeNode, HypervisorError, Placement, RuntimeState};
use vnext_hypervisor::{Adapter, EventSink, HttpEventSink};

/// A raw HTTP/1.1 request over a fresh loopback connection.
async fn call(addr: SocketAddr, method: &str, path: &str, body: Value) -> (u16, Value, Option<String>) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let allow = resp.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap(), allow)
}

#[tokio::test]
async fn adapter_api_round_trip_over_loopback() {
    let sink = RecordingSink::new();
    let adapter = Adapter::from_inventory(inventory(""), sink.clone(), fast_retry()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(vnext_hypervisor::http::serve(adapter.clone(), listener, async {
        let _ = stopped.await;
    }));

    let (status, body, _) = call(addr, "POST", adapter_api::LIST_PLACEMENTS, json!({})).await;
    assert_eq!(status, 200);
    let placements: Vec<Placement> = serde_json::from_value(body).unwrap();
    assert_eq!(placements.len(), 2);
    assert_eq!(placements[1].parent_ids, vec![ROOT.to_string()]);

    let server_id = id();
    let op = spawn_op(&server_id, "web-1", spec(1024, 1, 10), &[NODE_SMALL]);
    let (status, body, _) = call(addr, "POST", adapter_api::SUBMIT, serde_json::to_value(&op).unwrap()).await;
    assert_eq!((status, body), (200, Value::Null));
    settle(&adapter).await;
    assert_eq!(sink.of_task(&op.task_id).last().unwrap().operation_state, OperationState::Completed);

    let (status, body, _) = call(addr, "POST", adapter_api::LIST_COMPUTE_NODES, json!({})).await;
    assert_eq!(status, 200);
    let nodes: Vec<ComputeNode> = serde_json::from_value(body).unwrap();
    assert_eq!(nodes[0].usage.memory_mb, 1024);

    // submit-many: one outcome per operation, errors in the same JSON shape.
    let second = spawn_op(&id(), "web-2", spec(512, 1, 10), &[NODE_SMALL]);
    let mut broken = spawn_op(&id(), "web-3", spec(512, 1, 10), &[NODE_SMALL]);
    broken.steps.clear();
    let batch = serde_json::to_value(vec![&second, &broken, &op]).unwrap();
    let (status, body, _) = call(addr, "POST", adapter_api::SUBMIT_MANY, batch).await;
    assert_eq!(status, 200);
    assert_eq!(body[0], json!({}));
    assert_eq!(body[1]["error"]["kind"], "invalid");
    assert_eq!(body[2], json!({}), "a task already accepted is a no-op");
    settle(&adapter).await;
    assert_eq!(sink.of_task(&second.task_id).last().unwrap().operation_state, OperationState::Completed);
    assert!(sink.of_task(&broken.task_id).is_empty());
    let (status, body, _) = call(addr, "POST", adapter_api::SUBMIT_MANY, json!({ "task_id": "x" })).await;
    assert_eq!((status, &body["kind"]), (400, &json!("invalid")));

    let (status, body, _) = call(addr, "POST", adapter_api::SERVER_STATE, json!({ "server_id": server_id })).await;
    assert_eq!(status, 200);
    let state: RuntimeState = serde_json::from_value(body).unwrap();
    assert_eq!(state.compute_node_hostname.as_deref(), Some("small"));

    let (status, body, _) =
        call(addr, "POST", adapter_api::CONSOLE_LOG, json!({ "server_id": server_id, "lines": 1 })).await;
    assert_eq!((status, body), (200, json!("web-1 login:\n")));

    let (status, body, _) =
        call(addr, "POST", adapter_api::CONSOLE_URI, json!({ "server_id": server_id, "kind": "novnc" })).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("token="));

    let (status, body, _) = call(addr, "POST", adapter_api::DIAGNOSTICS, json!({ "server_id": server_id })).await;
    assert_eq!(status, 200);
    assert_eq!(body["memory_total_mb"], 1024);

    // Errors carry the HypervisorError JSON and a matching status.
    let (status, body, _) =
        call(addr, "POST", adapter_api::CONSOLE_URI, json!({ "server_id": server_id, "kind": "spice" })).await;
    assert_eq!(status, 400);
    assert!(matches!(serde_json::from_value(body).unwrap(), HypervisorError::Unsupported(_)));
    let unknown = id();
    let (status, body, _) = call(addr, "POST", adapter_api::SERVER_STATE, json!({ "server_id": unknown })).await;
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_value::<HypervisorError>(body).unwrap(), HypervisorError::UnknownServer(unknown));
    let (status, body, _) = call(addr, "POST", adapter_api::SUBMIT, json!({ "task_id": "x" })).await;
    assert_eq!(status, 400);
    assert_eq!(body["kind"], "invalid");
    let (status, _, allow) = call(addr, "GET", adapter_api::SUBMIT, json!(null)).await;
    assert_eq!((status, allow.as_deref()), (405, Some("POST")));
    let (status, _, _) = call(addr, "POST", "/v1/nope", json!({})).await;
    assert_eq!(status, 404);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed after shutdown");
}

#[tokio::test]
async fn http_event_sink_posts_json_with_the_secret_and_reports_refusals() {
    use hyper::service::service_fn;
    use std::sync::{Arc, Mutex};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_owned();
                        let secret = req.headers().get(EVENTS_SECRET_HEADER).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let ok = secret == "s3cret";
                        seen.lock().unwrap().push((path, secret, serde_json::from_slice(&body).unwrap()));
                        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"nope")));
                        if !ok {
                            *resp.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                        } else {
                            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    let event = vnext_core::events::TaskEvent {
        task_id: id(),
        server_id: id(),
        seq: 1,
        step_index: 0,
        step_state: vnext_core::events::StepState::Running,
        operation_state: OperationState::Running,
        error: None,
        server: None,
        at: "2026-01-01T00:00:00.000Z".into(),
    };
    let sink = HttpEventSink::new(&format!("http://{addr}"), "s3cret").unwrap();
    sink.deliver(std::slice::from_ref(&event)).await.unwrap();
    let wrong = HttpEventSink::new(&format!("http://{addr}"), "guess").unwrap();
    let err = wrong.deliver(std::slice::from_ref(&event)).await.unwrap_err();
    assert!(err.message.contains("401"), "{err}");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "/internal/events");
        assert_eq!(seen[0].1, "s3cret");
        // A batch: a JSON array of one task's events.
        assert_eq!(serde_json::from_value::<Vec<vnext_core::events::TaskEvent>>(seen[0].2.clone()).unwrap(), [event.clone()]);
    }
    // Nothing listening: a delivery error naming the address, not a panic.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = HttpEventSink::new(&format!("http://{closed}"), "s").unwrap().deliver(std::slice::from_ref(&event)).await.unwrap_err();
    assert!(err.message.contains(&closed.to_string()), "{err}");
}
