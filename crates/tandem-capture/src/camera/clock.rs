//! A camera buffer's capture time on the wall clock, and the frames lost between two
//! buffers, as plain functions of what the buffer says.
//!
//! V4L2 facts relied on (the V4L2 uAPI's "Buffers" chapter, Documentation/userspace-api/
//! media/v4l/buffer.rst in the kernel, and its DocBook predecessor io.xml):
//!
//! - `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`: "The buffer timestamp has been taken from the
//!   CLOCK_MONOTONIC clock. To access the same clock outside V4L2, use clock_gettime(2)."
//!   Drivers take it when the frame has been received (Sakari Ailus's 2014 documentation
//!   patch, "monotonic timestamps are taken after the corresponding frame has been
//!   received"), so it is when the picture was complete, not when exposure began.
//! - `sequence`: "Set by the driver, counting the frames (not fields!) in sequence." A gap
//!   between two dequeued buffers is frames the driver numbered but never handed over.

/// Buffers claiming to be older than this are not believed: a driver that sets the monotonic
/// flag but fills in another clock would otherwise put pictures minutes in the past.
pub const MAX_BELIEVED_AGE_US: u64 = 5_000_000;

/// The wall-clock time (µs since the Unix epoch, as [`tandem::stats::wall_us`]) at which a
/// buffer's picture was complete.
///
/// `buffer_mono_us` is the buffer's timestamp if it is CLOCK_MONOTONIC (`None` otherwise, or
/// when it is zero); `mono_now_us` and `wall_now_us` are both clocks read together just after
/// dequeuing. The picture is as old on the wall clock as on the monotonic one: `wall_now −
/// (mono_now − buffer)`. Without a monotonic timestamp, or with one not believable (in the
/// future, or older than [`MAX_BELIEVED_AGE_US`]), the dequeue time stands in.
pub fn capture_wall_us(buffer_mono_us: Option<u64>, mono_now_us: u64, wall_now_us: u64) -> u64 {
    match buffer_mono_us {
        Some(ts) if ts > 0 && ts <= mono_now_us && mono_now_us - ts <= MAX_BELIEVED_AGE_US => {
            wall_now_us.saturating_sub(mono_now_us - ts)
        }
        _ => wall_now_us,
    }
}

/// Frames lost between the buffer numbered `previous` and the next one taken, numbered
/// `sequence` (`u32` numbers wrap). A number that did not move forward (a restarted stream)
/// counts no loss.
pub fn frames_lost(previous: Option<u32>, sequence: u32) -> u64 {
    let Some(previous) = previous else {
        return 0;
    };
    let step = sequence.wrapping_sub(previous);
    if step == 0 || step > u32::MAX / 2 {
        0
    } else {
        u64::from(step - 1)
    }
}

/// CLOCK_MONOTONIC now, in µs: the clock V4L2 stamps buffers with. `std::time::Instant`
/// reads the same clock on Linux but does not give its value.
#[allow(unsafe_code)]
pub fn monotonic_now_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call, and
    // CLOCK_MONOTONIC is a clock every Linux kernel has, so the call only writes `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monotonic_timestamp_maps_to_the_wall_clock_by_its_age() {
        let (mono_now, wall_now) = (10_000_000, 1_700_000_000_000_000);
        // Complete 12.5 ms before it was dequeued.
        assert_eq!(
            capture_wall_us(Some(9_987_500), mono_now, wall_now),
            wall_now - 12_500
        );
        assert_eq!(
            capture_wall_us(Some(mono_now), mono_now, wall_now),
            wall_now
        );
        // No monotonic timestamp, a zero one, one from the future, one too old: dequeue time.
        assert_eq!(capture_wall_us(None, mono_now, wall_now), wall_now);
        assert_eq!(capture_wall_us(Some(0), mono_now, wall_now), wall_now);
        assert_eq!(
            capture_wall_us(Some(mono_now + 1), mono_now, wall_now),
            wall_now
        );
        assert_eq!(
            capture_wall_us(Some(mono_now - MAX_BELIEVED_AGE_US - 1), mono_now, wall_now),
            wall_now
        );
    }

    #[test]
    fn gaps_in_sequence_numbers_are_lost_frames() {
        assert_eq!(frames_lost(None, 7), 0);
        assert_eq!(frames_lost(Some(7), 8), 0);
        assert_eq!(frames_lost(Some(7), 10), 2);
        assert_eq!(frames_lost(Some(u32::MAX), 1), 1, "wraps");
        assert_eq!(frames_lost(Some(7), 7), 0, "same number");
        assert_eq!(frames_lost(Some(7), 3), 0, "restarted");
    }

    #[test]
    fn the_monotonic_clock_moves_with_instant() {
        let a = monotonic_now_us();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = monotonic_now_us();
        assert!(a > 0 && b - a >= 5_000 && b - a < 1_000_000, "{a} {b}");
    }
}
