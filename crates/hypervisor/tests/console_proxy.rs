//! The console proxy end to end: a fake VNC display (a TCP listener that
//! greets with `RFB 003.008\n` and echoes), the proxy on 127.0.0.1:0, and
//! tokio-tungstenite as the browser's websocket (an independent
//! implementation of the protocol).

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vnext_core::hypervisor::ConsoleType;
use vnext_hypervisor::console_proxy::{ConsoleProxy, ConsoleTarget, token_of_uri};

const GREETING: &[u8] = b"RFB 003.008\n";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A VNC display stand-in: greets, then echoes; closes on `bye`.
async fn fake_display() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                s.write_all(GREETING).await.unwrap();
                let mut buf = [0u8; 4096];
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if &buf[..n] == b"bye" {
                        return;
                    }
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn proxy(ttl: Duration) -> ConsoleProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ConsoleProxy::serve(listener, None, ttl).unwrap()
}

fn target(display: &str) -> ConsoleTarget {
    ConsoleTarget { server_id: "3d1c0f0e-0000-4000-8000-00000000abcd".into(), kind: ConsoleType::Novnc, address: display.into() }
}

/// Opens the websocket at `path` (offering `binary` when asked).
async fn connect(proxy: &ConsoleProxy, path: &str, binary: bool) -> Result<(Ws, Option<String>), WsError> {
    let mut req = format!("ws://{}{path}", proxy.local_addr()).into_client_request().unwrap();
    if binary {
        req.headers_mut().insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    }
    let (ws, resp) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req)).await.expect("no answer")?;
    let protocol = resp.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_string());
    Ok((ws, protocol))
}

/// Binary bytes from the websocket until `n` bytes came (frames may split).
async fn read_bytes(ws: &mut Ws, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("no frame").expect("closed").unwrap();
        match msg {
            Message::Binary(b) => got.extend_from_slice(&b),
            other => panic!("expected binary data, got {other:?}"),
        }
    }
    got
}

/// The refusal of an upgrade: status and the JSON error's message.
fn refusal(result: Result<(Ws, Option<String>), WsError>) -> (u16, String) {
    match result {
        Err(WsError::Http(resp)) => {
            let body: serde_json::Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["error"]["code"].as_u64(), Some(resp.status().as_u16() as u64), "{body}");
            (resp.status().as_u16(), body["error"]["message"].as_str().unwrap_or("").to_string())
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, the websocket opened"),
    }
}

#[tokio::test]
async fn a_token_opens_one_console_only() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;
    let token = proxy.issue(target(&display));
    let path = format!("/websockify?token={token}");

    let (mut ws, protocol) = connect(&proxy, &path, true).await.unwrap();
    assert_eq!(protocol.as_deref(), Some("binary"), "the offered binary subprotocol is echoed");
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
    ws.send(Message::binary(b"RFB 003.008\n".to_vec())).await.unwrap();
    assert_eq!(read_bytes(&mut ws, 12).await, b"RFB 003.008\n");

    let (status, message) = refusal(connect(&proxy, &path, true).await);
    assert_eq!(status, 410);
    assert!(message.contains("already used"), "{message}");

    // The first console still works.
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(read_bytes(&mut ws, 3).await, [1, 2, 3]);
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn an_unknown_token_is_refused_and_a_missing_one_too() {
    let proxy = proxy(Duration::from_secs(60)).await;
    let (status, message) = refusal(connect(&proxy, "/websockify?token=0123456789abcdef", true).await);
    assert_eq!(status, 404);
    assert!(message.contains("unknown"), "{message}");
    let (status, message) = refusal(connect(&proxy, "/websockify", true).await);
    assert_eq!(status, 400);
    assert!(message.contains("token"), "{message}");
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_millis(50)).await;
    let token = proxy.issue(target(&display));
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (status, message) = refusal(connect(&proxy, &format!("/websockify?token={token}"), true).await);
    assert_eq!(status, 410);
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn the_binary_subprotocol_is_echoed_only_when_offered() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;
    let token = proxy.issue(target(&display));
    let (mut ws, protocol) = connect(&proxy, &format!("/websockify?token={token}"), false).await.unwrap();
    assert_eq!(protocol, None);
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
}

#[tokio::test]
async fn the_novnc_uri_leads_to_a_websocket_on_the_root_path() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;
    let uri = proxy.open(target(&display));
    let base = format!("http://{}/vnc_auto.html?path=%3Ftoken%3D", proxy.local_addr());
    assert!(uri.starts_with(&base), "{uri}");
    let token = token_of_uri(&uri).unwrap();
    // noVNC connects to the `path` it is given: `?token=...` on the root.
    let (mut ws, _) = connect(&proxy, &format!("/?token={token}"), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);

    let xvp = proxy.open(ConsoleTarget { kind: ConsoleType::Xvpvnc, ..target(&display) });
    assert!(xvp.starts_with(&format!("http://{}/console?token=", proxy.local_addr())), "{xvp}");
    let (mut ws, _) = connect(&proxy, &format!("/console?token={}", token_of_uri(&xvp).unwrap()), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
}

#[tokio::test]
async fn pings_are_answered_and_fragmented_messages_reach_the_display() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;
    let token = proxy.issue(target(&display));
    let (mut ws, _) = connect(&proxy, &format!("/websockify?token={token}"), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);

    ws.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));

    // One binary message in three frames: first, continuation, last.
    for (op, fin, data) in [
        (OpCode::Data(Data::Binary), false, &b"frag"[..]),
        (OpCode::Data(Data::Continue), false, &b"men"[..]),
        (OpCode::Data(Data::Continue), true, &b"ted"[..]),
    ] {
        ws.send(Message::Frame(Frame::message(data.to_vec(), op, fin))).await.unwrap();
    }
    assert_eq!(read_bytes(&mut ws, 10).await, b"fragmented");
}

#[tokio::test]
async fn the_client_is_told_when_the_display_closes() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;
    let token = proxy.issue(target(&display));
    let (mut ws, _) = connect(&proxy, &format!("/websockify?token={token}"), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
    ws.send(Message::binary(b"bye".to_vec())).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap().unwrap().unwrap();
    match msg {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// A websocket handshake by hand, for frames tungstenite would not send.
async fn raw_upgrade(proxy: &ConsoleProxy, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    let req = format!(
        "GET /websockify?token={token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "closed during the handshake");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
    s
}

/// Reads server frames until a close frame; returns its code.
async fn close_code(s: &mut TcpStream) -> u16 {
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all)).await.unwrap().unwrap();
    let mut rest = &all[..];
    while rest.len() >= 2 {
        let (op, len) = (rest[0] & 0x0F, (rest[1] & 0x7F) as usize);
        assert!(len < 126, "a short frame");
        if op == 0x8 {
            return u16::from_be_bytes([rest[2], rest[3]]);
        }
        rest = &rest[2 + len..];
    }
    panic!("no close frame in {all:?}");
}

#[tokio::test]
async fn absurd_and_unmasked_frames_close_the_console_and_the_proxy_lives_on() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;

    let mut s = raw_upgrade(&proxy, &proxy.issue(target(&display))).await;
    // A binary frame announcing 2^62 bytes.
    s.write_all(&[0x82, 0xFF, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]).await.unwrap();
    assert_eq!(close_code(&mut s).await, 1009);

    let mut s = raw_upgrade(&proxy, &proxy.issue(target(&display))).await;
    s.write_all(&[0x82, 0x03, b'a', b'b', b'c']).await.unwrap(); // not masked
    assert_eq!(close_code(&mut s).await, 1002);

    let mut s = raw_upgrade(&proxy, &proxy.issue(target(&display))).await;
    s.write_all(&[0x00, 0x81, 0, 0, 0, 0, b'x']).await.unwrap(); // a continuation of nothing
    assert_eq!(close_code(&mut s).await, 1002);

    let token = proxy.issue(target(&display));
    let (mut ws, _) = connect(&proxy, &format!("/websockify?token={token}"), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
}

#[tokio::test]
async fn a_plain_request_is_refused_without_using_the_token() {
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await;
    let token = proxy.issue(target(&display));
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.write_all(format!("GET /websockify?token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains(r#""error""#) && answer.contains("websocket"), "{answer}");
    let (mut ws, _) = connect(&proxy, &format!("/websockify?token={token}"), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
}

#[tokio::test]
async fn an_unreachable_display_is_a_bad_gateway() {
    // A port nothing listens on: bind, note it, close.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let proxy = proxy(Duration::from_secs(60)).await;
    let token = proxy.issue(target(&gone));
    let (status, message) = refusal(connect(&proxy, &format!("/websockify?token={token}"), true).await);
    assert_eq!(status, 502);
    assert!(message.contains(&gone), "{message}");
}

/// A plain GET, answered with status and body.
async fn get(proxy: &ConsoleProxy, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(proxy.local_addr()).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[tokio::test]
async fn with_a_web_directory_the_novnc_pages_are_served_beside_the_websockets() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("vnc_auto.html"), "<title>noVNC</title>").unwrap();
    std::fs::write(web.path().join(".secret"), "no").unwrap();
    let display = fake_display().await;
    let proxy = proxy(Duration::from_secs(60)).await.with_web(Some(web.path().to_path_buf()));
    let uri = proxy.open(target(&display));
    let page = uri.strip_prefix(&format!("http://{}", proxy.local_addr())).unwrap();
    assert_eq!(get(&proxy, page).await, ("HTTP/1.1 200 OK".to_string(), "<title>noVNC</title>".to_string()));
    for bad in ["/.secret", "/../etc/passwd", "/%2e%2e/etc/passwd", "/nope.js"] {
        assert!(get(&proxy, bad).await.0.starts_with("HTTP/1.1 404"), "{bad}");
    }
    // The page did not use the token: the websocket opens.
    let (mut ws, _) = connect(&proxy, &format!("/?token={}", token_of_uri(&uri).unwrap()), true).await.unwrap();
    assert_eq!(read_bytes(&mut ws, GREETING.len()).await, GREETING);
}
