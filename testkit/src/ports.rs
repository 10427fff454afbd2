//! Loopback ports for servers a test starts as processes. A port is reserved by holding a
//! listener on it, so the OS hands it to nobody else, until the server that will use it
//! is about to start; a process-wide set keeps one test binary (whose tests run in
//! parallel) from handing the same port out twice even after the listener is gone.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Every port this process has handed out.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Ports held open on 127.0.0.1 until released one by one ([`PortReservation::release`])
/// or all at once (on drop).
#[derive(Debug)]
pub struct PortReservation {
    held: Vec<(u16, Option<TcpListener>)>,
}

/// Reserves `n` distinct ports on 127.0.0.1 that no other caller in this process was
/// given, holding a listener on each.
pub fn reserve_ports(n: usize) -> PortReservation {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::with_capacity(n);
    // Ports handed out before whose listener is gone: keep them bound while we look on,
    // so the OS picks another one.
    let mut stale = Vec::new();
    while held.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        if handed_out.insert(port) {
            held.push((port, Some(l)));
        } else {
            stale.push(l);
            assert!(
                stale.len() < 10_000,
                "the OS keeps offering ports already handed out"
            );
        }
    }
    PortReservation { held }
}

impl PortReservation {
    /// The reserved ports, in order.
    pub fn ports(&self) -> Vec<u16> {
        self.held.iter().map(|(p, _)| *p).collect()
    }

    /// The `i`th reserved port.
    pub fn port(&self, i: usize) -> u16 {
        self.held[i].0
    }

    /// `127.0.0.1:<port>` of the `i`th reserved port.
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.port(i))
    }

    /// Closes the listener on `port` so the server about to start can bind it.
    pub fn release(&mut self, port: u16) {
        let slot = self
            .held
            .iter_mut()
            .find(|(p, _)| *p == port)
            .unwrap_or_else(|| panic!("port {port} is not in this reservation"));
        slot.1 = None;
    }
}
