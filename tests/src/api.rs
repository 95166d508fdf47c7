//! A small client for payhost's HTTP API over a real socket: JSON bodies, raw bodies,
//! extra headers, and the response's status, headers and JSON.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn param(&self) -> &str {
        self.body["error"]["param"].as_str().unwrap_or("")
    }

    /// `body[field]` as a string; panics with the whole answer when missing.
    pub fn s(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string '{field}' in {self:?}"))
            .to_owned()
    }
}

/// A client bound to one host and API key.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: String,
    pub key: String,
    pub tenant: Option<String>,
}

impl Api {
    pub fn new(addr: &str, key: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            key: key.to_owned(),
            tenant: None,
        }
    }

    pub fn for_tenant(&self, tenant: &str) -> Self {
        Self {
            tenant: Some(tenant.to_owned()),
            ..self.clone()
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, &[], Some(&body.to_string()))
    }

    /// A POST with an `Idempotency-Key`.
    pub fn post_idem(&self, path: &str, key: &str, body: &Value) -> Resp {
        self.send(
            "POST",
            path,
            &[("Idempotency-Key", key)],
            Some(&body.to_string()),
        )
    }

    /// One HTTP/1.1 exchange with `Connection: close`; panics when the host cannot be
    /// reached.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path} to {}: {e}", self.addr))
    }

    /// [`Api::send`], or the error when the host cannot be reached (a host being killed).
    ///
    /// # Errors
    /// Connecting or writing the request failed.
    pub fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> std::io::Result<Resp> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
             Authorization: Bearer {}\r\n",
            self.addr, self.key
        );
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = &self.tenant {
            head.push_str(&format!("X-Tenant-Id: {t}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or("");
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        s.write_all(head.as_bytes())?;
        s.write_all(body.as_bytes())?;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let body = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or(Value::String(body.into()))
        };
        Ok(Resp {
            status,
            headers,
            body,
        })
    }
}
