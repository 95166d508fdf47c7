//! One keep-alive HTTP/1.1 connection for the load generators.

use payhost_tests::API_KEY;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(addr: &str) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        Self {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    /// Sends a POST with extra header lines (each ending in \r\n) and reads the answer.
    pub fn post_with(&mut self, path: &str, extra: &str, body: &str) -> u16 {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\n{extra}Content-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.exchange(&req)
    }

    /// Sends a POST and reads the whole answer; returns the status.
    pub fn post(&mut self, path: &str, key: &str, body: &str) -> u16 {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {API_KEY}\r\n\
             Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.exchange(&req)
    }

    /// Sends a GET with the API key and reads the answer; returns the status and body.
    pub fn get(&mut self, path: &str) -> (u16, Vec<u8>) {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {API_KEY}\r\n\r\n"
        );
        self.exchange_body(&req)
    }

    fn exchange(&mut self, req: &str) -> u16 {
        self.exchange_body(req).0
    }

    fn exchange_body(&mut self, req: &str) -> (u16, Vec<u8>) {
        self.writer.write_all(req.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        (status, body)
    }
}

/// What the hosts at `addrs` asked of their database so far, summed, from `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct DbCost {
    pub reads: f64,
    pub statements: f64,
    pub transactions: f64,
}

impl DbCost {
    pub fn of(addrs: &[String]) -> Self {
        let mut sum = Self::default();
        for addr in addrs {
            let (status, body) = Conn::open(addr).get("/metrics");
            assert_eq!(status, 200, "/metrics on {addr}");
            let text = String::from_utf8_lossy(&body);
            let value = |name: &str| -> f64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                    .unwrap_or(0.0)
            };
            sum.reads += value("payhost_db_reads_total");
            sum.statements += value("payhost_db_write_statements_total");
            sum.transactions += value("payhost_db_transactions_total");
        }
        sum
    }

    /// Prints the cost per item (a payment, a webhook) since `before`: reads, statements,
    /// transactions, and the round trips they make on PostgreSQL (each read and statement
    /// one, each transaction two more for BEGIN and COMMIT).
    pub fn print_per(&self, before: Self, items: f64, what: &str) {
        let per = |now: f64, then: f64| (now - then) / items.max(1.0);
        let (r, s, t) = (
            per(self.reads, before.reads),
            per(self.statements, before.statements),
            per(self.transactions, before.transactions),
        );
        println!(
            "  database per {what}: {r:.2} reads, {s:.2} write statements, {t:.3} transactions \
             (group commit) = {:.2} round trips on PostgreSQL",
            r + s + 2.0 * t
        );
    }
}
