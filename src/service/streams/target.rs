//! Where a stream may deliver. Unless the operator allows it
//! (`--allow-private-stream-targets`), a destination may not be a loopback,
//! link-local (cloud metadata among them), private, shared, multicast or
//! unspecified address: checked when the stream is made (for a URL whose host
//! is an address) and again at every connection (for names, on every address
//! they resolve to, so a name that later resolves inward is refused too).
//! Redirects are never followed: a 3xx answer is a refusal.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                // Site-local (deprecated), NAT64 and documentation ranges.
                || (first & 0xffc0) == 0xfec0
                || (first == 0x0064 && v6.segments()[1] == 0xff9b)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                // IPv4-compatible (::a.b.c.d) addresses.
                || (v6.segments()[..6].iter().all(|s| *s == 0)))
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        // 0.0.0.0/8, shared address space (100.64.0.0/10), 192.0.0.0/24,
        // benchmarking (198.18.0.0/15) and the reserved 240.0.0.0/4.
        || a == 0
        || (a == 100 && (b & 0xc0) == 64)
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b & 0xfe) == 18)
        || a >= 240)
}

/// Why a destination's host may not be reached.
pub fn refusal(host: &str, allow_private: bool) -> Option<&'static str> {
    if allow_private {
        return None;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return (!is_public(ip)).then_some(
            "destination is a loopback, private, link-local or otherwise non-public address",
        );
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    (name == "localhost" || name.ends_with(".localhost") || name.ends_with(".internal"))
        .then_some("destination names this machine or an internal network")
}

/// A resolver that answers only public addresses: the connection-time half
/// of the check, for every name the HTTP client connects to.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                let why: Box<dyn std::error::Error + Send + Sync> = if found.is_empty() {
                    format!("{host} resolves to no address").into()
                } else {
                    format!("{host} resolves only to non-public addresses").into()
                };
                return Err(why);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_refused_and_public_ones_are_not() {
        for inward in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = inward.parse().unwrap();
            assert!(!is_public(ip), "{inward}");
            assert!(refusal(inward, false).is_some(), "{inward}");
            assert!(refusal(inward, true).is_none(), "{inward}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
            assert!(refusal(public, false).is_none(), "{public}");
        }
        assert!(refusal("[::1]", false).is_some());
        assert!(refusal("LOCALHOST.", false).is_some());
        assert!(refusal("metadata.google.internal", false).is_some());
        assert!(refusal("hooks.example.com", false).is_none());
    }
}
