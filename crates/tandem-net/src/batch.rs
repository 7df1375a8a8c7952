//! Batched sends: datagrams the endpoint releases together reach the kernel in as few
//! system calls as the platform allows.
//!
//! On Linux that is UDP generic segmentation offload (`UDP_SEGMENT`, Linux 4.18): one
//! `sendmsg` carries up to [`MAX_SEGMENTS`] datagrams laid end to end, all of one size but
//! the last, and the kernel (or the NIC) cuts them apart. Tandem's datagrams suit it: a
//! frame's fragments and parity shards share one size, only the last fragment is shorter.
//! The endpoint writes its datagrams end to end into one buffer the driver owns (see
//! `tandem-proto`'s `Endpoint::poll_transmit`), so a run is one `iovec` and nothing is
//! copied on the way to the kernel. Where GSO is missing or a device refuses it,
//! [`BatchSender`] falls back to one `send_to` per datagram for the rest of the session;
//! elsewhere that is the only path.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;

use std::net::UdpSocket;

/// Most datagrams one GSO send carries (the kernel's `UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Most payload bytes one GSO send carries (64 KiB minus IP and UDP headers).
pub const MAX_GSO_BYTES: usize = 65_000;

/// Splits consecutive datagram lengths into runs that one GSO send can carry: every
/// datagram of a run has the run's first length except the last, which may be shorter;
/// at most [`MAX_SEGMENTS`] datagrams and [`MAX_GSO_BYTES`] bytes.
pub fn gso_runs(lengths: &[usize]) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < lengths.len() {
        let size = lengths[start];
        let mut end = start + 1;
        let mut bytes = size;
        while end < lengths.len()
            && end - start < MAX_SEGMENTS
            && bytes + lengths[end] <= MAX_GSO_BYTES
            && lengths[end] <= size
            && size > 0
        {
            bytes += lengths[end];
            end += 1;
            if lengths[end - 1] < size {
                // A shorter datagram can only end a run.
                break;
            }
        }
        runs.push(start..end);
        start = end;
    }
    runs
}

/// Sends datagrams in batches (see the module docs).
#[derive(Debug)]
pub struct BatchSender {
    gso: bool,
    /// Sends that carried more than one datagram.
    pub batched_sends: u64,
}

impl BatchSender {
    /// A sender for `socket` (non-blocking), using GSO when the kernel offers it there.
    pub fn new(socket: &UdpSocket) -> BatchSender {
        BatchSender {
            gso: gso_supported(socket),
            batched_sends: 0,
        }
    }

    /// Whether sends are segmented by the kernel.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Sends a prefix of the datagrams laid end to end in `buf`, whose lengths are `lens`,
    /// to `to`: returns how many the kernel took; `WouldBlock` when it took none because the
    /// socket buffer is full. Any other error concerns the first datagram, which the caller
    /// counts and drops.
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        buf: &[u8],
        lens: &[usize],
        to: SocketAddr,
    ) -> io::Result<usize> {
        let Some(&first) = lens.first() else {
            return Ok(0);
        };
        if self.gso && lens.len() > 1 {
            let run = gso_runs(lens).into_iter().next().unwrap_or(0..1);
            if run.len() > 1 {
                let bytes: usize = lens[run.clone()].iter().sum();
                match send_segmented(socket, &buf[..bytes], first, to) {
                    Ok(()) => {
                        self.batched_sends += 1;
                        return Ok(run.len());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                    // EIO: a device without checksum offload; EINVAL: a kernel that does not
                    // segment this socket. Either way, stop trying for this session.
                    Err(e) if matches!(e.raw_os_error(), Some(5 | 22)) => {
                        tracing::debug!(%e, "UDP GSO refused; sending datagrams one by one");
                        self.gso = false;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        socket.send_to(&buf[..first], to).map(|_| 1)
    }
}

#[cfg(target_os = "linux")]
fn gso_supported(socket: &UdpSocket) -> bool {
    use std::os::fd::AsFd;
    // Reading the option succeeds exactly where the kernel knows it.
    nix::sys::socket::getsockopt(&socket.as_fd(), nix::sys::socket::sockopt::UdpGsoSegment).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn gso_supported(_socket: &UdpSocket) -> bool {
    false
}

#[cfg(target_os = "linux")]
fn send_segmented(
    socket: &UdpSocket,
    run: &[u8],
    segment: usize,
    to: SocketAddr,
) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let segment = u16::try_from(segment)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "datagram over 64 KiB"))?;
    let iov = [IoSlice::new(run)];
    let addr = SockaddrStorage::from(to);
    let sent = sendmsg(
        socket.as_raw_fd(),
        &iov,
        &[ControlMessage::UdpGsoSegments(&segment)],
        MsgFlags::empty(),
        Some(&addr),
    )
    .map_err(io::Error::from)?;
    if sent == run.len() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "GSO send took {sent} of {} bytes",
            run.len()
        )))
    }
}

#[cfg(not(target_os = "linux"))]
fn send_segmented(
    _socket: &UdpSocket,
    _run: &[u8],
    _segment: usize,
    _to: SocketAddr,
) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(22))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_follow_the_gso_rules() {
        assert_eq!(gso_runs(&[]), Vec::<Range<usize>>::new());
        assert_eq!(gso_runs(&[1200]), vec![0..1]);
        // A frame: equal fragments, a short last one, then the next frame.
        assert_eq!(
            gso_runs(&[1200, 1200, 1200, 700, 1200, 1200]),
            vec![0..4, 4..6]
        );
        // A longer datagram cannot join a run of shorter ones.
        assert_eq!(gso_runs(&[800, 1200, 1200]), vec![0..1, 1..3]);
        // Limits: 64 segments, 65 000 bytes.
        let many = vec![100; 150];
        assert_eq!(gso_runs(&many), vec![0..64, 64..128, 128..150]);
        let big = vec![1400; 60];
        let runs = gso_runs(&big);
        assert_eq!(runs[0], 0..46, "46 × 1400 = 64 400 bytes fit, 47 do not");
        assert!(runs.iter().all(|r| r.len() * 1400 <= MAX_GSO_BYTES));
        // Empty datagrams go alone.
        assert_eq!(gso_runs(&[0, 0]), vec![0..1, 1..2]);
    }

    #[test]
    fn a_batch_arrives_as_separate_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("receiver");
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("sender");
        tx.set_nonblocking(true).expect("non-blocking");
        let mut batch = BatchSender::new(&tx);
        let datagrams: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; if i == 4 { 300 } else { 1200 }])
            .collect();
        let buf: Vec<u8> = datagrams.concat();
        let lens: Vec<usize> = datagrams.iter().map(Vec::len).collect();
        let to = rx.local_addr().expect("addr");
        let (mut sent, mut at) = (0, 0);
        while sent < lens.len() {
            match batch.send(&tx, &buf[at..], &lens[sent..], to) {
                Ok(n) => {
                    at += lens[sent..sent + n].iter().sum::<usize>();
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("send failed: {e}"),
            }
        }
        let mut got = [0u8; 2048];
        for (i, d) in datagrams.iter().enumerate() {
            let (n, _) = rx.recv_from(&mut got).expect("received");
            assert_eq!(&got[..n], &d[..], "datagram {i}");
        }
        if cfg!(target_os = "linux") {
            assert!(batch.gso(), "Linux offers UDP GSO on loopback");
            assert_eq!(batch.batched_sends, 1, "one sendmsg for all five");
        }
    }
}
