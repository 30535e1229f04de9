//! URLs as etcd's flags take them: `http://host:port`, in comma-separated lists.
//!
//! etcd (`pkg/types/urls.go`) accepts the schemes http, https, unix and unixs, requires an
//! explicit port ("URL address does not have the form \"host:port\"") and rejects any path
//! ("URL must not contain a path"). keel serves plain HTTP only, so https/unix URLs are rejected
//! with an error that says so.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// One `scheme://host:port` URL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Url {
    /// Always `http` today.
    pub scheme: String,
    /// Host name or IP address, without the brackets of an IPv6 literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Why a URL could not be parsed; the message names the offending text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

impl Url {
    /// Parse one URL such as `http://127.0.0.1:2379` or `http://[::1]:2380`.
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let text = text.trim();
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(UrlError(format!("URL scheme must be http: {text}")));
        };
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "http" => {}
            "https" | "unixs" | "unix" => {
                return Err(UrlError(format!(
                    "URL scheme {scheme} is not supported by keel (plain http only, no TLS or \
                     unix sockets yet): {text}"
                )))
            }
            _ => return Err(UrlError(format!("URL scheme must be http: {text}"))),
        }
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if !path.is_empty() {
            return Err(UrlError(format!("URL must not contain a path: {text}")));
        }
        if authority.contains('@') {
            return Err(UrlError(format!(
                "URL must not contain user information: {text}"
            )));
        }
        let no_port = || {
            UrlError(format!(
                "URL address does not have the form \"host:port\": {text}"
            ))
        };
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (host, tail) = after.split_once(']').ok_or_else(no_port)?;
            let port = tail.strip_prefix(':').ok_or_else(no_port)?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(UrlError(format!("invalid IPv6 address in URL: {text}")));
            }
            (host, port)
        } else {
            let (host, port) = authority.rsplit_once(':').ok_or_else(no_port)?;
            if host.contains(':') {
                return Err(no_port());
            }
            (host, port)
        };
        if host.is_empty() && port.is_empty() {
            return Err(no_port());
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(UrlError(format!("invalid host in URL: {text}")));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| UrlError(format!("invalid port {port:?} in URL: {text}")))?;
        Ok(Url {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// Parse a comma-separated list (at least one URL). Empty items are errors.
    pub fn parse_list(text: &str) -> Result<Vec<Url>, UrlError> {
        if text.trim().is_empty() {
            return Err(UrlError("URL list is empty".to_string()));
        }
        text.split(',').map(Url::parse).collect()
    }

    /// The socket addresses to bind or dial for this URL. An empty host means all interfaces
    /// (as in Go's `net.Listen("tcp", ":2380")`); `localhost` resolves to its loopback
    /// addresses, IPv4 first.
    pub fn socket_addrs(&self) -> Result<Vec<SocketAddr>, UrlError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            self.host.as_str()
        };
        let mut addrs: Vec<SocketAddr> = (host, self.port)
            .to_socket_addrs()
            .map_err(|e| UrlError(format!("cannot resolve {self}: {e}")))?
            .collect();
        addrs.sort_by_key(|a| a.is_ipv6());
        addrs.dedup();
        if addrs.is_empty() {
            return Err(UrlError(format!("cannot resolve {self}: no addresses")));
        }
        Ok(addrs)
    }

    /// The one address to bind for a listen URL: the first resolved address (IPv4 preferred).
    pub fn listen_addr(&self) -> Result<SocketAddr, UrlError> {
        Ok(self.socket_addrs()?[0])
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Render a URL list the way etcd prints it: comma-separated.
pub fn join(urls: &[Url]) -> String {
    urls.iter()
        .map(|u| u.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_ipv6() {
        let u = Url::parse("http://127.0.0.1:2379").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 2379));
        assert_eq!(u.to_string(), "http://127.0.0.1:2379");
        let u = Url::parse("HTTP://localhost:1").unwrap();
        assert_eq!(u.to_string(), "http://localhost:1");
        let u = Url::parse("http://[::1]:2380").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.to_string(), "http://[::1]:2380");
        let u = Url::parse("http://:2380").unwrap();
        assert_eq!(u.host, "");
        assert_eq!(u.listen_addr().unwrap().to_string(), "0.0.0.0:2380");
    }

    #[test]
    fn rejects_what_etcd_rejects() {
        for (bad, needle) in [
            ("127.0.0.1:2379", "scheme"),
            ("ftp://a:1", "scheme"),
            ("https://a:1", "not supported"),
            ("unix://a:1", "not supported"),
            ("http://a", "host:port"),
            ("http://a:1/", "path"),
            ("http://a:1/x", "path"),
            ("http://a:99999", "port"),
            ("http://a:x", "port"),
            ("http://u@a:1", "user"),
            ("http://[zz]:1", "IPv6"),
            ("http://a b:1", "host"),
            ("http://", "host:port"),
        ] {
            let err = Url::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
            assert!(err.contains(bad.trim()), "error must name the URL: {err}");
        }
    }

    #[test]
    fn lists() {
        let l = Url::parse_list("http://a:1,http://b:2").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(join(&l), "http://a:1,http://b:2");
        assert!(Url::parse_list("").is_err());
        assert!(Url::parse_list("http://a:1,").is_err());
    }

    #[test]
    fn localhost_resolves_to_loopback_ipv4_first() {
        let u = Url::parse("http://localhost:2379").unwrap();
        let a = u.listen_addr().unwrap();
        assert!(a.ip().is_loopback());
        assert_eq!(a.port(), 2379);
        assert!(a.is_ipv4());
    }
}
