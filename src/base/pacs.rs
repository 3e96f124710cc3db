//! Where the local PACS listens: `AE@host:port`.

use std::fmt;
use std::str::FromStr;

use super::ae_title::valid_ae;

/// `AE@host:port` of a C-STORE SCP; IPv6 hosts in brackets
/// (`PACS@[::1]:104`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacsAddress {
    pub called_ae: String,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not \"AE@host:port\": {reason}")]
pub struct AddressError {
    pub value: String,
    pub reason: &'static str,
}

impl FromStr for PacsAddress {
    type Err = AddressError;
    fn from_str(value: &str) -> Result<PacsAddress, AddressError> {
        let fail = |reason| AddressError {
            value: value.chars().take(100).collect(),
            reason,
        };
        let (ae, addr) = value.split_once('@').ok_or_else(|| fail("no '@'"))?;
        if !valid_ae(ae) {
            return Err(fail(
                "the AE title must be 1-16 printable ASCII characters without '\\'",
            ));
        }
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| fail("an IPv6 address is written [address]:port"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(fail("not an IPv6 address between the brackets"));
            }
            (host, port)
        } else {
            let (host, port) = addr.rsplit_once(':').ok_or_else(|| fail("no ':port'"))?;
            if host.contains(':') {
                return Err(fail("put an IPv6 address in brackets: AE@[::1]:104"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(fail("no host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| fail("the port must be 1-65535"))?;
        Ok(PacsAddress {
            called_ae: ae.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for PacsAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.called_ae, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.called_ae, self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let a: PacsAddress = "PACS@pacs.example:104".parse().unwrap();
        assert_eq!(
            a,
            PacsAddress {
                called_ae: "PACS".into(),
                host: "pacs.example".into(),
                port: 104
            }
        );
        let a: PacsAddress = "ORTHANC@[::1]:4242".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 4242));
        assert_eq!(a.to_string(), "ORTHANC@[::1]:4242");
        for bad in [
            "pacs.example:104",
            "@h:1",
            "PACS@h",
            "PACS@:104",
            "PACS@h:0",
            "PACS@h:70000",
            "PACS@::1:104",
            "PACS@[::1]104",
            "THIS_AE_TITLE_IS_TOO_LONG@h:1",
            "BACK\\SLASH@h:1",
        ] {
            assert!(bad.parse::<PacsAddress>().is_err(), "{bad}");
        }
    }
}
