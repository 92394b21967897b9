//! [`FakeWechat`]: a deliberately dumb plain-HTTP server standing in for WeChat Pay, for
//! hostile-reply tests. Each request (path and XML body) is answered by a closure with a
//! [`FakeReply`]: any status and bytes, with or without a `Content-Length`, streamed in
//! chunks so that a 10 MB reply costs the server no memory spike and the client must stop
//! reading by itself. Point `wxpay::ClientConfig::primary_base_url` or the proxy's
//! `wechat.primary_url` at [`FakeWechat::url`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wxpay::{ApiKey, Params, SignType, sign, xml};

/// What the fake answers.
#[derive(Clone, Debug)]
pub enum FakeReply {
    /// This status and body, with a `Content-Length`.
    Body {
        /// The HTTP status.
        status: u16,
        /// The body.
        body: Vec<u8>,
    },
    /// 200 with `repeat` copies of `chunk` after `head`, then `tail`; with a
    /// `Content-Length` when `sized`, else ended by closing the connection.
    Stream {
        /// The first bytes.
        head: Vec<u8>,
        /// Repeated `repeat` times.
        chunk: Vec<u8>,
        /// How many times.
        repeat: usize,
        /// The last bytes.
        tail: Vec<u8>,
        /// Whether a `Content-Length` is sent.
        sized: bool,
    },
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct FakeRequest {
    /// The path, e.g. `/pay/micropay`.
    pub path: String,
    /// The body.
    pub body: String,
}

impl FakeRequest {
    /// The request's fields (empty when the body is not valid XML).
    pub fn params(&self) -> Params {
        xml::decode(self.body.as_bytes()).unwrap_or_else(|_| Params::new())
    }
}

/// The running fake.
pub struct FakeWechat {
    url: String,
    hits: Arc<AtomicUsize>,
}

type Answer = dyn Fn(&FakeRequest) -> FakeReply + Send + Sync;

impl FakeWechat {
    /// Starts the fake on a loopback port; `answer` decides every reply.
    pub async fn start(
        answer: impl Fn(&FakeRequest) -> FakeReply + Send + Sync + 'static,
    ) -> FakeWechat {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        let hits = Arc::new(AtomicUsize::new(0));
        let answer: Arc<Answer> = Arc::new(answer);
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let answer = answer.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, answer.as_ref(), &counter).await;
                });
            }
        });
        FakeWechat {
            url: format!("http://{address}/"),
            hits,
        }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many requests were answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, answer: &Answer, hits: &AtomicUsize) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(position) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break position + 4;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 || buffer.len() > 64 * 1024 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    let request = FakeRequest {
        path,
        body: String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned(),
    };
    hits.fetch_add(1, Ordering::SeqCst);
    match answer(&request) {
        FakeReply::Body { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&body).await?;
        }
        FakeReply::Stream {
            head: first,
            chunk,
            repeat,
            tail,
            sized,
        } => {
            let total = first.len() + chunk.len() * repeat + tail.len();
            let mut head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n".to_owned();
            if sized {
                head.push_str(&format!("Content-Length: {total}\r\n"));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&first).await?;
            for _ in 0..repeat {
                // The client hanging up early is the expected outcome.
                if stream.write_all(&chunk).await.is_err() {
                    return Ok(());
                }
            }
            stream.write_all(&tail).await?;
        }
    }
    stream.shutdown().await
}

/// `fields` (plus `return_code=SUCCESS`), signed with `key` as WeChat signs a reply, as XML.
pub fn signed_reply(fields: &[(&str, &str)], key: &str, sign_type: SignType) -> Vec<u8> {
    let mut params: Params = fields.iter().copied().collect();
    if !params.contains("return_code") {
        params.insert("return_code", "SUCCESS");
    }
    if sign_type == SignType::HmacSha256 {
        params.insert("sign_type", "HMAC-SHA256");
    }
    let signature = sign::sign(&params, &ApiKey::new(key), sign_type);
    params.insert("sign", signature);
    xml::encode(&params).into_bytes()
}
