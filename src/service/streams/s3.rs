//! The S3 destination: each delivery is one `PutObject` of a gzip NDJSON
//! object (see [`super::encode::batch_parcel`] for its name), through
//! `object_store`'s S3 client, with the streams' own HTTP client beneath it
//! (no redirects, bounded in time, and the resolver that answers only public
//! addresses unless private targets are allowed).
//!
//! `object_store` retries nothing here (the deliverer retries, with its
//! backoff and the stream's lease) and keeps the status of a failed request
//! to itself, so the client beneath it notes the last answer that was not a
//! success: the deliverer judges it as it judges a webhook's answer (5xx,
//! 408 and 429 are tried again, any other refusal makes the stream
//! `failing`), and a failure with no answer is the network's, tried again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService,
};
use object_store::{ClientOptions, ObjectStore as _, RetryConfig};

use super::deliver::{judged, retry_after, Sent};
use super::encode::Parcel;
use super::Destination;

/// Bytes of a refusal's body kept (S3 answers with a short XML document).
const KEPT_ANSWER_BYTES: usize = 1024;
/// Bytes of a refusal's body read at most.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// An answer that was not a success, as the deliverer judges it.
#[derive(Debug, Clone)]
struct Answer {
    status: reqwest::StatusCode,
    retry_after: Option<Duration>,
    text: String,
}

/// The streams' HTTP client, noting the last answer that was not a success.
#[derive(Debug, Clone)]
struct Watched {
    client: reqwest::Client,
    last: Arc<Mutex<Option<Answer>>>,
}

impl HttpConnector for Watched {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.clone()))
    }
}

#[async_trait::async_trait]
impl HttpService for Watched {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let answer = self.client.call(request).await?;
        if answer.status().is_success() {
            return Ok(answer);
        }
        let (parts, body) = answer.into_parts();
        let mut bytes = Vec::new();
        let mut chunks = body.bytes_stream();
        while bytes.len() < MAX_ANSWER_BYTES {
            match chunks.next().await {
                Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let mut kept = bytes.clone();
        kept.truncate(KEPT_ANSWER_BYTES);
        let noted = Answer {
            status: parts.status,
            retry_after: retry_after(&parts.headers),
            text: String::from_utf8_lossy(&kept).trim().to_owned(),
        };
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(noted);
        Ok(HttpResponse::from_parts(parts, bytes.into()))
    }
}

/// Puts the parcel as its object in the destination's bucket.
pub(super) async fn put(
    client: &reqwest::Client,
    allow_private: bool,
    destination: &Destination,
    secret_access_key: &str,
    parcel: &Parcel,
) -> Sent {
    let Destination::S3 {
        endpoint,
        bucket,
        prefix,
        region,
        access_key_id,
    } = destination
    else {
        return Sent::Refused("not an S3 destination".into());
    };
    if let Some(why) = endpoint
        .as_deref()
        .and_then(|e| reqwest::Url::parse(e).ok())
        .and_then(|url| super::target::refusal(url.host_str().unwrap_or_default(), allow_private))
    {
        return Sent::Refused(why.into());
    }
    let watched = Watched {
        client: client.clone(),
        last: Default::default(),
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(region)
        .with_access_key_id(access_key_id)
        .with_secret_access_key(secret_access_key)
        .with_allow_http(allow_private)
        .with_retry(RetryConfig {
            max_retries: 0,
            ..RetryConfig::default()
        })
        .with_http_connector(watched.clone());
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    let store = match builder.build() {
        Ok(store) => store,
        Err(e) => return Sent::Refused(format!("the S3 destination is not usable: {e}")),
    };
    let name = if prefix.is_empty() {
        parcel.object.clone()
    } else {
        format!("{prefix}/{}", parcel.object)
    };
    let path = match object_store::path::Path::parse(&name) {
        Ok(path) => path,
        Err(e) => return Sent::Refused(format!("the object name {name} is not usable: {e}")),
    };
    match store.put(&path, parcel.body.clone().into()).await {
        Ok(_) => Sent::Acknowledged,
        Err(e) => {
            let noted = watched
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            match noted {
                Some(answer) => judged(answer.status, answer.retry_after, &answer.text),
                None => Sent::Retry {
                    why: format!("writing {name} failed: {}", describe(&e)),
                    after: None,
                },
            }
        }
    }
}

/// An `object_store` error with its causes, for `last_error`.
fn describe(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
