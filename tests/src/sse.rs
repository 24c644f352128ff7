//! A minimal SSE reader over reqwest, for asserting what a live client receives.
use futures::StreamExt;
use reqwest::Response;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

pub struct SseClient {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseClient {
    pub fn new(response: Response) -> Self {
        assert_eq!(response.status(), 200, "stream opened");
        SseClient {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// True when the server ends the stream within `wait` with no event first (keep-alive
    /// comments aside); false on an event or when `wait` runs out with the stream open,
    /// which `next` cannot tell apart from an end.
    pub async fn ended(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if self.buffer.contains("event:") || self.buffer.contains("data:") {
                return false;
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Ok(Some(Err(_))) => return true,
                Err(_) => return false,
            }
        }
    }

    /// The next event (keep-alive comments are skipped), or None if `wait` passes first.
    pub async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                let mut frame = Frame::default();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        frame.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        frame.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        frame.data.push_str(v.trim_start());
                    }
                }
                if frame.event.is_empty() && frame.data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(frame);
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}
