//! Credentials named in `nats.url` (`nats://user:password@host:4222`, or
//! `nats://token@host:4222`). async-nats parses them out of a URL but does not send them
//! (0.51), so without this the roles could only use a NATS server that lets anyone in;
//! and the URL is shown nowhere with them.
use async_nats::{ConnectOptions, ServerAddr};
use percent_encoding::percent_decode_str;

/// `options` with the servers' credentials: every server of a cluster must name the same
/// ones (a client sends one set to whichever server it reaches).
pub fn apply(options: ConnectOptions, addrs: &[ServerAddr]) -> anyhow::Result<ConnectOptions> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8().map(|d| d.into_owned());
    let mut named = addrs.iter().map(|a| (a.username(), a.password()));
    let first = named.next().unwrap_or((None, None));
    anyhow::ensure!(
        named.all(|other| other == first),
        "nats.url: every server must name the same credentials (or none)"
    );
    Ok(match first {
        (Some(user), Some(password)) => options.user_and_password(decode(user)?, decode(password)?),
        (Some(token), None) => options.token(decode(token)?),
        _ => options,
    })
}

/// Each URL of the comma-separated list with what precedes its `@` (the credentials)
/// replaced by `***`.
pub fn redacted(url: &str) -> String {
    url.split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &u[..scheme + 3], &u[at..])
            }
            (None, Some(at)) => format!("***{}", &u[at..]),
            _ => u.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[path = "credentials_test.rs"]
mod tests;
