//! Where a request comes from: the connection's peer, or — when that peer is a proxy the
//! operator trusts (`host.trusted_proxies`) — the client its `X-Forwarded-For` names. A
//! header from anyone else is ignored: a client cannot choose the address it is audited and
//! throttled under.

use crate::config::net::{canonical, Cidr};
use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// The operator's proxies.
#[derive(Debug, Clone, Default)]
pub struct Proxies(Vec<Cidr>);

impl Proxies {
    /// The proxies that parse (`config::problems` names the others).
    pub fn new(configured: &[String]) -> Self {
        Self(configured.iter().filter_map(|p| Cidr::parse(p)).collect())
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address: the peer, or when the peer is a trusted proxy, the last
    /// address of `X-Forwarded-For` that is not one (proxies append, so the addresses left
    /// of the first untrusted one are whatever the client sent). `None` without a peer
    /// (a router driven in-process).
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok().map(canonical))
            .collect();
        Some(
            forwarded
                .iter()
                .rev()
                .copied()
                .find(|a| !self.trusted(*a))
                .or_else(|| forwarded.first().copied())
                .unwrap_or(peer),
        )
    }
}

/// The peer of a request's connection (the server puts it in every request).
pub fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// How the audit trail writes a source.
pub fn describe(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(
            c.contains("::ffff:10.1.2.3".parse().unwrap()),
            "mapped IPv4"
        );
        let one = Cidr::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "proxy.local", "", "10.0.0/8", "::/129"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxies = Proxies::new(&["10.0.0.0/8".to_owned()]);
        let client = |peer: &str, xff: &[&str]| {
            proxies
                .client(Some(peer.parse().unwrap()), &headers(xff))
                .unwrap()
                .to_string()
        };
        // Anyone else's header is ignored.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), "203.0.113.9");
        // Through the proxy: the client it saw, not what the client wrote before it.
        assert_eq!(client("10.0.0.2", &["198.51.100.1"]), "198.51.100.1");
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4, 198.51.100.1"]),
            "198.51.100.1"
        );
        assert_eq!(
            client("10.0.0.2", &["1.2.3.4", "198.51.100.1, 10.0.0.7"]),
            "198.51.100.1"
        );
        // A proxy with nothing forwarded is the client.
        assert_eq!(client("10.0.0.2", &[]), "10.0.0.2");
        assert_eq!(client("10.0.0.2", &["garbage"]), "10.0.0.2");
        assert_eq!(proxies.client(None, &headers(&["1.2.3.4"])), None);
    }
}
