//! Who may call payhost and from where, below the layers that ask (the HTTP API, `/admin`,
//! the console): the keys, as digests ([`keyring`]); the address a request comes from,
//! trusting `X-Forwarded-For` only from configured proxies ([`source`]); and the sign-in
//! throttle per source address ([`throttle`]).

pub mod keyring;
pub mod source;
pub mod throttle;
