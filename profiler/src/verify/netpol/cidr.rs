//! CIDR blocks for `ipBlock`: parsing as the API server accepts them, and containment.

use std::net::IpAddr;

/// An address block. The host bits of `addr` are kept as written; containment compares only
/// the prefix, as the API server's own check does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not a CIDR (no prefix length)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not a CIDR (bad address)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text:?} is not a CIDR (bad prefix length)"))?;
        Ok(Self { addr, prefix })
    }

    /// An IPv4 block never contains an IPv6 address and the reverse: a v4-mapped v6 address
    /// is normalised to v4 first, as the recorder does.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }

    /// The prefix length: 0 for a block of a whole address family.
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    /// Whether every address of `other` is in `self`: `except` entries must be inside `cidr`.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - u32::from(prefix);
    (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn containment() {
        let table = [
            ("172.17.0.0/16", "172.17.1.5", true),
            ("172.17.0.0/16", "172.18.0.1", false),
            ("172.17.1.0/24", "172.17.1.255", true),
            ("10.0.0.5/32", "10.0.0.5", true),
            ("10.0.0.5/32", "10.0.0.6", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("::/0", "fd00::1", true),
            ("fd00::/64", "fd00::1", true),
            ("fd00::/64", "fd00:0:0:1::1", false),
            ("fd00::1/128", "fd00::1", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ];
        for (cidr, addr, want) in table {
            assert_eq!(
                Cidr::parse(cidr).unwrap().contains(ip(addr)),
                want,
                "{cidr} ∋ {addr}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_cidr() {
        for bad in [
            "10.0.0.1",
            "10.0.0.0/33",
            "fd00::/129",
            "x/8",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn covers() {
        let net = Cidr::parse("172.17.0.0/16").unwrap();
        assert!(net.covers(&Cidr::parse("172.17.1.0/24").unwrap()));
        assert!(!net.covers(&Cidr::parse("172.0.0.0/8").unwrap()));
        assert!(!net.covers(&Cidr::parse("10.0.0.0/24").unwrap()));
    }
}
