//! Documents on S3: each call's document is one `PutObject` to
//! `{consumer}/{event id}.{extension}` in one bucket, with its content type and
//! the call's key as user metadata ([`IDEMPOTENCY_KEY_METADATA`]). S3 replaces
//! an object whole, so a repeat of the call leaves one object holding the last
//! body: the write is idempotent by its key.
//!
//! Every SDK error is classified once, in [`classify`]: a missing or misnamed
//! bucket, a denied write and any other refusal (4xx) are permanent and name
//! the bucket; throttling, server errors, timeouts and transport failures are
//! retryable.

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use outbox_application::ports::{Document, DocumentStore, StoredDocument};
use outbox_application::{CallError, CallKey};

/// The user metadata name under which an object carries the key of the call
/// that wrote it (sent as `x-amz-meta-idempotency-key`).
pub const IDEMPOTENCY_KEY_METADATA: &str = "idempotency-key";

/// Error codes after which the same write can succeed later: throttling, a
/// server failing or slow, a conflicting operation still in flight.
const RETRYABLE_CODES: [&str; 9] = [
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
];

/// The document store on one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3DocumentStore {
    client: Client,
    bucket: String,
}

impl S3DocumentStore {
    /// The store writing to `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

#[async_trait]
impl DocumentStore for S3DocumentStore {
    async fn put(&self, key: &CallKey, document: &Document) -> Result<StoredDocument, CallError> {
        let object_key = key.document_key(document.extension);
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object_key)
            .content_type(document.content_type)
            .metadata(IDEMPOTENCY_KEY_METADATA, key.to_string())
            .body(ByteStream::from(document.body.clone()))
            .send()
            .await
            .map_err(|error| classify(&self.bucket, &error))?;
        Ok(StoredDocument {
            key: object_key,
            tag: output.e_tag().map(str::to_owned),
        })
    }
}

/// A failed S3 call on `bucket` as a [`CallError`]: permanent when S3 refused
/// the request (4xx other than throttling) or the request could not be built;
/// retryable for throttling, server errors, timeouts and transport failures.
pub(crate) fn classify<E>(bucket: &str, error: &SdkError<E, HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let context = DisplayErrorContext(error);
    let service = match error {
        SdkError::ServiceError(service) => service,
        SdkError::ConstructionFailure(_) => {
            return CallError::Permanent(format!(
                "the write to S3 bucket `{bucket}` could not be built: {context}"
            ))
        }
        SdkError::TimeoutError(_) => {
            return CallError::Retryable(format!(
                "the write to S3 bucket `{bucket}` timed out: {context}"
            ))
        }
        _ => {
            return CallError::Retryable(format!("S3 bucket `{bucket}` is out of reach: {context}"))
        }
    };
    let status = service.raw().status().as_u16();
    let code = service.err().code();
    let message = service.err().message().unwrap_or("no message");
    let described = format!("{} ({status}): {message}", code.unwrap_or("no code"));
    match code {
        Some("NoSuchBucket") => {
            CallError::Permanent(format!("S3 bucket `{bucket}` does not exist: {described}"))
        }
        Some(
            "AccessDenied" | "AllAccessDisabled" | "InvalidAccessKeyId" | "SignatureDoesNotMatch",
        ) => CallError::Permanent(format!(
            "writing to S3 bucket `{bucket}` is denied: {described}"
        )),
        Some("InvalidBucketName") => CallError::Permanent(format!(
            "`{bucket}` is not a valid S3 bucket name: {described}"
        )),
        Some("InvalidArgument") => CallError::Permanent(format!(
            "S3 bucket `{bucket}` refused an argument of the write: {described}"
        )),
        Some(code) if RETRYABLE_CODES.contains(&code) => CallError::Retryable(format!(
            "S3 bucket `{bucket}` is throttling or failing: {described}"
        )),
        _ if status == 429 || status >= 500 => CallError::Retryable(format!(
            "S3 bucket `{bucket}` is throttling or failing: {described}"
        )),
        _ if (400..500).contains(&status) => CallError::Permanent(format!(
            "S3 bucket `{bucket}` refused the write: {described}"
        )),
        _ => CallError::Retryable(format!(
            "S3 bucket `{bucket}` answered unexpectedly: {described}"
        )),
    }
}

#[cfg(test)]
mod tests {
    // A panic is how these tests fail.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    const BUCKET: &str = "invoices";

    fn service_error(code: Option<&str>, status: u16) -> SdkError<PutObjectError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("refused by test");
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(PutObjectError::generic(meta.build()), raw)
    }

    fn reason(error: CallError) -> (bool, String) {
        match error {
            CallError::Permanent(reason) => (true, reason),
            CallError::Retryable(reason) => (false, reason),
        }
    }

    #[test]
    fn a_missing_denied_or_misnamed_bucket_is_permanent_and_named() {
        for (code, status, says) in [
            ("NoSuchBucket", 404, "does not exist"),
            ("AccessDenied", 403, "is denied"),
            ("InvalidBucketName", 400, "not a valid S3 bucket name"),
            ("InvalidArgument", 400, "refused an argument"),
            ("EntityTooLarge", 400, "refused the write"),
        ] {
            let (permanent, reason) = reason(classify(BUCKET, &service_error(Some(code), status)));
            assert!(permanent, "{code} is permanent");
            assert!(reason.contains("`invoices`"), "{reason} names the bucket");
            assert!(reason.contains(says), "{reason} says {says}");
            assert!(reason.contains(code), "{reason} names the code");
        }
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for (code, status) in [
            (Some("SlowDown"), 503),
            (Some("ServiceUnavailable"), 503),
            (Some("InternalError"), 500),
            (Some("RequestTimeout"), 400),
            (None, 503),
            (None, 502),
            (None, 429),
        ] {
            let (permanent, reason) = reason(classify(BUCKET, &service_error(code, status)));
            assert!(!permanent, "{code:?} ({status}) is retryable");
            assert!(reason.contains("`invoices`"), "{reason} names the bucket");
        }
    }

    #[test]
    fn an_unnamed_refusal_is_permanent_by_its_status() {
        let (permanent, _) = reason(classify(BUCKET, &service_error(None, 404)));
        assert!(permanent);
    }

    #[test]
    fn timeouts_and_transport_failures_are_retryable() {
        let timeout: SdkError<PutObjectError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(matches!(
            classify(BUCKET, &timeout),
            CallError::Retryable(_)
        ));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let dispatch: SdkError<PutObjectError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        assert!(matches!(
            classify(BUCKET, &dispatch),
            CallError::Retryable(_)
        ));
        let cut: SdkError<PutObjectError, HttpResponse> = SdkError::response_error(
            "truncated body",
            HttpResponse::new(200.try_into().unwrap(), SdkBody::empty()),
        );
        assert!(matches!(classify(BUCKET, &cut), CallError::Retryable(_)));
    }

    #[test]
    fn a_request_that_cannot_be_built_is_permanent() {
        let error: SdkError<PutObjectError, HttpResponse> =
            SdkError::construction_failure("no bucket given");
        assert!(matches!(classify(BUCKET, &error), CallError::Permanent(_)));
    }
}
