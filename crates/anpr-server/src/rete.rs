//! Where a request comes from, for the municipalities' authorised IP addresses.
//!
//! The layer [`individua`] runs first on every request (REST and SOAP): it takes the
//! peer address of the connection (`ConnectInfo` for plain HTTP, the TLS connection
//! for `--tls`) and, only when that peer is one of the configured trusted reverse
//! proxies, the client address the proxy put in `X-Forwarded-For` (the right-most
//! address that is not itself a trusted proxy: entries further left can be written by
//! anyone). The result travels with the request as [`IndirizzoCliente`]; once the
//! caller is known (REST: the `Caller` extractor; SOAP: after the caller is built), the
//! service checks it against the caller's municipality (`Registry::verifica_indirizzo`,
//! EV233, audited). The layer also lets the security cache see other processes'
//! changes (at most once a second).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The client address of a request, when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndirizzoCliente(pub Option<IpAddr>);

/// The peer address of a TLS connection (set by [`crate::tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndirizzoRemoto(pub SocketAddr);

/// The client address: the peer, or what a trusted proxy forwarded.
pub fn cliente(peer: Option<IpAddr>, inoltrato: Option<&str>, fidati: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !fidati.contains(&peer) {
        return Some(peer);
    }
    let Some(catena) = inoltrato else {
        return Some(peer);
    };
    let mut ultimo = peer;
    for voce in catena.rsplit(',').map(str::trim) {
        let Ok(ip) = voce.parse::<IpAddr>().map(|i| i.to_canonical()) else {
            // A malformed entry: nothing left of it can be trusted.
            return None;
        };
        if !fidati.contains(&ip) {
            return Some(ip);
        }
        ultimo = ip;
    }
    Some(ultimo)
}

/// Layer: records [`IndirizzoCliente`] on the request.
pub async fn individua(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .or_else(|| req.extensions().get::<IndirizzoRemoto>().map(|r| r.0.ip()));
    let sic = state.registry.sicurezza_configurata().cloned();
    let fidati = sic.as_ref().map_or(&[][..], |s| s.proxy_fidati());
    let inoltrato = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let ip = cliente(
        peer,
        (!inoltrato.is_empty()).then_some(inoltrato.as_str()),
        fidati,
    );
    req.extensions_mut().insert(IndirizzoCliente(ip));
    if let Some(sic) = sic {
        if let Err(e) = sic.aggiorna(state.registry.clock().now()).await {
            // Serving with a directory up to a few seconds old beats refusing all.
            tracing::warn!(error = %e, "security directory refresh failed");
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let fidati = [ip("10.0.0.1"), ip("10.0.0.2")];
        // A direct client: X-Forwarded-For is ignored.
        assert_eq!(
            cliente(Some(ip("203.0.113.9")), Some("198.51.100.1"), &fidati),
            Some(ip("203.0.113.9"))
        );
        // Through a trusted proxy: the right-most untrusted entry.
        assert_eq!(
            cliente(
                Some(ip("10.0.0.1")),
                Some("1.2.3.4, 198.51.100.7, 10.0.0.2"),
                &fidati
            ),
            Some(ip("198.51.100.7"))
        );
        // A proxy without the header is the client itself.
        assert_eq!(
            cliente(Some(ip("10.0.0.1")), None, &fidati),
            Some(ip("10.0.0.1"))
        );
        // Garbage from the right: unknown.
        assert_eq!(
            cliente(Some(ip("10.0.0.1")), Some("1.2.3.4, x"), &fidati),
            None
        );
        // IPv4-mapped IPv6 peers compare as IPv4.
        assert_eq!(
            cliente(Some(ip("::ffff:203.0.113.9")), None, &fidati),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(cliente(None, Some("1.2.3.4"), &fidati), None);
    }
}
