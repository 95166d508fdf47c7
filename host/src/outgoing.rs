//! The host's one outgoing HTTP client: plugins' provider calls, deliveries to the
//! application's endpoints and the trace exporter all use it.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// The host's one outgoing HTTP client type: hyper over rustls (webpki roots).
pub type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// A client for https:// and http:// (local endpoints: tests, a proxy on localhost); who
/// may be reached is the caller's decision (allowlists, configured endpoints).
pub fn http_client(connect_timeout: Duration) -> HttpClient {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new()).build(connector)
}
