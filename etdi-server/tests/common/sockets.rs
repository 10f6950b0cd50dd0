//! Reads `TCP_NODELAY` on the server's end of a connection, from outside the
//! code that accepted it: the server's socket is found among the file
//! descriptors of its process (this test process, or a child such as
//! `etdi proxy`) by its peer address, duplicated with `pidfd_getfd(2)` and
//! asked with `getsockopt(2)`. So the check goes through whatever accept
//! path the server really used, and cannot be satisfied by a test double.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `TCP_NODELAY` of the socket in process `pid` whose peer is `peer` (the
/// client's local address), once the server has accepted it (waits up to
/// five seconds). Fails the test when no such socket appears.
pub async fn server_nodelay(pid: u32, peer: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = find(pid, peer) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} has no socket connected to {peer} after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`server_nodelay`] for a test without an async runtime (the server is
/// another process).
pub fn server_nodelay_blocking(pid: u32, peer: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = find(pid, peer) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} has no socket connected to {peer} after 5 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn find(pid: u32, peer: SocketAddr) -> Option<bool> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid as i32)?,
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap_or_else(|e| panic!("pidfd_open({pid}): {e}"));
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()? {
        let Ok(entry) = entry else { continue };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if !is_socket {
            continue;
        }
        let Ok(dup) =
            rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty())
        else {
            continue;
        };
        // A copy of the descriptor: dropping it leaves the server's open.
        let stream = std::net::TcpStream::from(dup);
        if stream.peer_addr().ok() == Some(peer) {
            return Some(
                stream
                    .nodelay()
                    .unwrap_or_else(|e| panic!("getsockopt(TCP_NODELAY): {e}")),
            );
        }
    }
    None
}
