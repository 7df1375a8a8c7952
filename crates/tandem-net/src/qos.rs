//! Scheduling for the threads a frame waits on: the driver's thread (the pacer's slots) and
//! the receiver's decode thread.
//!
//! On Apple platforms a thread without a QoS class runs at the default class, below the
//! user-interactive work the system favours while an app is in front; the pacing and
//! decode threads are exactly that work, so they ask for `QOS_CLASS_USER_INTERACTIVE`
//! (`pthread_set_qos_class_self_np`, Apple's libpthread `pthread/qos.h`; the value 0x21 is
//! `sys/qos.h`'s). On Linux the thread's timer slack is lowered from the default 50 µs to
//! 1 µs, so its timed waits end when asked rather than up to 50 µs later.

/// Gives the calling thread the scheduling a media thread needs (see the module docs).
/// Best effort: a refusal leaves the thread as it was.
pub fn media_thread() {
    #[cfg(target_vendor = "apple")]
    // SAFETY: sets the calling thread's own QoS class; no pointers involved.
    #[allow(unsafe_code)]
    unsafe {
        let _ =
            libc::pthread_set_qos_class_self_np(libc::qos_class_t::QOS_CLASS_USER_INTERACTIVE, 0);
    }
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_timerslack(1_000);
}
