//! A SysV shared-memory segment for MIT-SHM: the X server writes the captured picture into
//! it, so the pixels cross no socket.
//!
//! The segment is marked for removal (`IPC_RMID`) as soon as the server has attached it:
//! Linux keeps a removed segment alive until its last process detaches, so a crash of this
//! process (or of the server) leaves nothing behind in `ipcs -m`. Only a crash between
//! `shmget` and that `IPC_RMID`, one round trip long, could leak it.

#![allow(unsafe_code)] // SysV shared memory is libc calls on a raw mapping; each block states its invariant.

use std::io;

/// One attached segment, owned: detached (and marked for removal) on drop.
#[derive(Debug)]
pub(super) struct Segment {
    id: libc::c_int,
    addr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is private to this value (nothing else in the process holds its
// address), so moving the owner to another thread is fine.
unsafe impl Send for Segment {}

impl Segment {
    /// A new segment of `len` bytes, readable and writable by this user only (the X server
    /// checks a local client's credentials against these permissions).
    pub(super) fn new(len: usize) -> io::Result<Segment> {
        // SAFETY: plain libc call with valid arguments; failure is -1 with errno set.
        let id = unsafe { libc::shmget(libc::IPC_PRIVATE, len, libc::IPC_CREAT | 0o600) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `id` is the segment just made; a null address lets the kernel choose.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
        if addr as isize == -1 {
            let err = io::Error::last_os_error();
            // SAFETY: removing the segment we made, which nobody has attached.
            unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
            return Err(err);
        }
        Ok(Segment {
            id,
            addr: addr.cast::<u8>(),
            len,
        })
    }

    /// The id the X server attaches by.
    pub(super) fn id(&self) -> u32 {
        self.id as u32
    }

    /// Marks the segment for removal once every process has detached it: call it once the
    /// server has attached.
    pub(super) fn remove_id(&self) {
        // SAFETY: `id` is our segment; a second removal only fails with EINVAL, ignored.
        unsafe { libc::shmctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }

    /// `len` bytes from `offset`, clamped to the segment, to read and write: the capture
    /// draws the pointer into a band, then converts it.
    ///
    /// The X server writes a region only while it answers the `ShmGetImage` aimed at it,
    /// and this process touches a region only after that reply has arrived, so the bytes do
    /// not change under the slice (while the server fills the next band, a disjoint one).
    pub(super) fn range_mut(&mut self, offset: usize, len: usize) -> &mut [u8] {
        let offset = offset.min(self.len);
        let len = len.min(self.len - offset);
        // SAFETY: `addr` is a live mapping of `self.len` bytes (it lives until drop), the
        // range lies inside it, shmat zero-fills a new segment, so every byte is
        // initialised, and `&mut self` makes this the only slice of the mapping in this
        // process while it lives.
        unsafe { std::slice::from_raw_parts_mut(self.addr.add(offset), len) }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `addr` came from shmat and is detached once, here; no slice of it
        // outlives `self` (`range_mut` borrows `self`).
        unsafe { libc::shmdt(self.addr.cast::<libc::c_void>()) };
        self.remove_id();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_zeroed_and_removed_on_drop() {
        let mut s = match Segment::new(4096) {
            Ok(s) => s,
            Err(e) => {
                // Some sandboxes forbid SysV IPC; the capture falls back to GetImage there.
                eprintln!("skipped: no SysV shared memory here ({e})");
                return;
            }
        };
        assert!(s.range_mut(0, 4096).iter().all(|&b| b == 0));
        assert_eq!(s.range_mut(0, 10_000).len(), 4096, "clamped to the segment");
        assert_eq!(s.range_mut(4000, 200).len(), 96, "clamped to the segment");
        assert_eq!(s.range_mut(5000, 10).len(), 0, "past the end");
        let id = s.id;
        drop(s);
        // SAFETY: IPC_STAT into a zeroed struct of the right type.
        let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
        assert_eq!(r, -1, "the segment is gone after drop");
    }
}
