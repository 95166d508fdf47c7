//! Network addresses as the config gives them: an address or a block of them
//! (`host.trusted_proxies`), parsed and matched here so that checking the config and
//! serving requests read them alike.

use std::net::IpAddr;

/// An address or a block of them (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse().ok().filter(|b| *b <= max)?,
            None => max,
        };
        Some(Self { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix(u128::from(u32::from(n)) << 96, self.bits)
                    == prefix(u128::from(u32::from(a)) << 96, self.bits)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix(u128::from(n), self.bits) == prefix(u128::from(a), self.bits)
            }
            _ => false,
        }
    }
}

fn prefix(v: u128, bits: u8) -> u128 {
    match bits {
        0 => 0,
        b => v & (u128::MAX << (128 - u32::from(b))),
    }
}

/// IPv4 addresses mapped into IPv6 (a dual-stack listener's peers) as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
